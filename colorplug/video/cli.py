"""The video path of ``colorplug colorize``: a video file or an image sequence in, a video
file or an image sequence out, streamed through `colorize_video` in resumable segments.

Output policy (colorplug/outputs.py): an existing output is left alone unless
``--overwrite`` (or counted as skipped with ``--skip-existing``). The output appears only
when the whole run has finished; meanwhile the work lives in ``.NAME.colorplug-work/``
beside it (see colorplug/video/work.py). A run that is interrupted, or fails after
finishing a segment, keeps that folder for ``--resume``; one that fails before (a source
that cannot be decoded, a bad backend) removes it and leaves nothing behind.
"""
from __future__ import annotations

import argparse
import sys
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from ..outputs import ExistingPolicy, PlanError
from .io import (KEEPS_SAMPLE_ASPECT, OUTPUT_FORMATS, VIDEO_SUFFIXES, EncodeSettings,
                 VideoInfo, VideoReadError, is_pattern, is_video_file, pattern_files,
                 pattern_number, probe, read_frames, sequence_files)

#: Frames per segment: what an interruption can lose at most.
DEFAULT_SEGMENT_FRAMES = 250


def add_arguments(s: argparse.ArgumentParser) -> None:
    """The video flags of ``colorplug colorize``."""
    s.add_argument("--temporal", default="off", choices=["off", "flow", "exemplar"],
                   help="video: temporal coherence between frames (default off: frame by "
                   "frame)")
    s.add_argument("--codec", default=None, help="video output: FFmpeg encoder (default "
                   "libx264 for .mp4/.mov/.mkv, libvpx-vp9 for .webm)")
    s.add_argument("--crf", type=int, default=None, help="video output: constant quality, "
                   "lower is better (default 20 for H.264, 31 for VP9)")
    s.add_argument("--fps", default=None, help="image-sequence input: frames per second, "
                   "e.g. 24 or 30000/1001 (default 25)")
    s.add_argument("--resume", action="store_true", help="video: continue an interrupted "
                   "run from its last finished segment (same settings)")
    s.add_argument("--segment-frames", type=int, default=DEFAULT_SEGMENT_FRAMES,
                   help="video: frames per resumable segment")


def _is_video_input(path: Path) -> bool:
    """A video file, or a frame pattern; an existing file whose name holds a '%d' is a
    file, and a GIF of one frame is a still image."""
    if is_pattern(path) and not path.is_file():
        return True
    if not is_video_file(path):
        return False
    if path.suffix.lower() == ".gif" and path.is_file():
        from PIL import Image

        try:
            with Image.open(path) as img:
                return getattr(img, "n_frames", 1) > 1
        except (OSError, ValueError):
            return True  # not readable as an image: the video path reports why
    return True


def is_video_job(args: argparse.Namespace) -> bool:
    """Whether `colorplug colorize` was given a video or an image sequence to colorize."""
    output = Path(args.output)
    return (any(_is_video_input(Path(p)) for p in args.inputs)
            or output.suffix.lower() in VIDEO_SUFFIXES or is_pattern(output)
            or args.temporal != "off")


def _target(args: argparse.Namespace) -> tuple[str, Path]:
    """The kind of output -o names: "video", "pattern" or "folder"."""
    from ..image import IMAGE_SUFFIXES

    out = Path(args.output)
    suffix = out.suffix.lower()
    if is_pattern(out):
        try:
            out.name % 0
        except (TypeError, ValueError):
            raise PlanError(f"-o {out}: a frame pattern holds one number field and nothing "
                            "else with %, such as frame_%05d.png (write %% for a literal "
                            "%)") from None
        if suffix not in IMAGE_SUFFIXES:
            raise PlanError(f"-o {out}: a frame pattern needs an image suffix "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        return "pattern", out
    if suffix in OUTPUT_FORMATS:
        if out.is_dir():  # found now, not after the whole clip
            raise PlanError(f"-o {out}: a folder of that name exists; give a video file "
                            "name, or a folder name without a video suffix")
        return "video", out
    if suffix and not out.is_dir():
        raise PlanError(f"-o {out}: colorplug writes video as "
                        f"{', '.join(sorted(OUTPUT_FORMATS))}, frames as a pattern such as "
                        "frame_%05d.png, or into a folder (a name without a suffix)")
    if out.exists() and not out.is_dir():
        raise PlanError(f"-o {out}: a file of that name exists; frames go into a folder "
                        "(give a new name), or give a video name such as out.mp4")
    return "folder", out


def _frame_namer(kind: str, target: Path, info: VideoInfo, suffix: str
                 ) -> Callable[[int], str]:
    """The file name of output frame `index` of an image-sequence output: a sequence's
    frames keep their names (folder) or numbers (pattern to pattern); a video's count from 1."""
    files = sequence_files(info.path) if info.kind == "sequence" else None
    if kind == "folder":
        if files is not None:
            return lambda i: files[i].stem + suffix
        return lambda i: f"frame_{i + 1:06d}{suffix}"
    if files is not None and is_pattern(info.path):
        return lambda i: target.name % pattern_number(info.path, files[i])
    return lambda i: target.name % (i + 1)


def _existing(kind: str, target: Path) -> bool:
    if kind == "video":
        return target.exists() or target.is_symlink()
    if kind == "pattern":
        return bool(pattern_files(target))
    return target.is_dir() and any(target.iterdir())


def _parse_fps(text: str | None) -> Fraction | None:
    if text is None:
        return None
    try:
        fps = Fraction(text)
    except (ValueError, ZeroDivisionError):
        fps = None
    if fps is None or fps <= 0:
        raise PlanError(f"--fps must be a positive number or ratio such as 30000/1001; "
                        f"got {text!r}")
    return fps


def _check_flags(args: argparse.Namespace) -> None:
    if args.sample or len(args.inputs) != 1:
        raise PlanError("video: give exactly one input (a video file, a folder of frames or "
                        "a frame pattern such as frame_%05d.png)")
    for flag, given in (("--hints", args.hints), ("--scheduler", args.scheduler),
                        ("--dicom-out", args.dicom_out)):
        if given:
            raise PlanError(f"{flag} does not apply to video")
    if args.output_dtype != "uint8":
        raise PlanError("--output-dtype: video frames are written with 8 bits per channel")
    if args.batch_size < 1:
        raise PlanError(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.segment_frames < 1:
        raise PlanError(f"--segment-frames must be at least 1; got {args.segment_frames}")


def _input_stamp(info: VideoInfo) -> list:
    """What identifies the source's content cheaply (to refuse resuming a changed file)."""
    if info.kind == "sequence":
        return [len(sequence_files(info.path))]
    stat = info.path.stat()
    return [stat.st_size, stat.st_mtime_ns]


class _SegmentSink:
    """Colour frames -> finished segment files of `segment_frames` frames each."""

    def __init__(self, work: Any, info: VideoInfo, settings: EncodeSettings, size: int) -> None:
        self.work, self.info, self.settings, self.size = work, info, settings, size
        self.writer = None
        self.stamps: list[int] = []

    def write(self, pts: int, rgb: np.ndarray) -> None:
        from .io import SegmentWriter

        if self.writer is None:
            self.index, self.tmp = self.work.new_segment()
            self.writer = SegmentWriter(self.tmp, self.info, self.settings)
            self.stamps = []
        self.writer.write(pts, rgb)
        self.stamps.append(pts)
        if len(self.stamps) == self.size:
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.work.finish_segment(self.index, self.tmp, self.stamps)
            self.writer = None

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.tmp.unlink(missing_ok=True)
            self.writer = None


class _FrameSink:
    """Colour frames -> image files in the work folder, each written atomically."""

    def __init__(self, folder: Path, name_of: Callable[[int], str], start: int) -> None:
        self.folder, self.name_of, self.index = folder, name_of, start
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, pts: int, rgb: np.ndarray) -> None:
        from ..image import encode_image, write_bytes_atomic

        name = self.name_of(self.index)
        write_bytes_atomic(self.folder / name, encode_image(rgb, Path(name).suffix),
                           overwrite=True)
        self.index += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _place_frames(work: Any, kind: str, target: Path, overwrite: bool) -> None:
    """Move finished frames from the work folder to the output (a new folder in one
    rename)."""
    import os

    from ..files import move_into_place

    folder = target if kind == "folder" else target.parent
    if kind == "folder" and not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work.frames_dir, folder)
        return
    folder.mkdir(parents=True, exist_ok=True)
    for f in sorted(work.frames_dir.iterdir()):
        move_into_place(f, folder / f.name, overwrite=overwrite)


def run_video(args: argparse.Namespace) -> int:
    """Colorize one video or image sequence into a video or image sequence."""
    from tqdm.auto import tqdm

    from .. import __version__, default_backend
    from ..cli_shared import backend_and_options, err, parse_range
    from ..files import move_into_place, temporary_beside
    from ..image import read_image
    from ..registry import default_registry
    from .api import colorize_video
    from .io import mux_segments, require_av
    from .work import WorkFolder

    _check_flags(args)
    say = (lambda *a, **k: None) if args.quiet else print
    policy = ExistingPolicy.from_flags(overwrite=args.overwrite,
                                       skip_existing=args.skip_existing)
    source = Path(args.inputs[0])
    kind, target = _target(args)
    if kind == "video":
        require_av("writing video")
    info = probe(source, fps=_parse_fps(args.fps),
                 allow_huge=getattr(args, "allow_huge_images", False))
    if _existing(kind, target) and policy is not ExistingPolicy.OVERWRITE:
        if policy is ExistingPolicy.SKIP:
            say(f"0 colorized, 1 skipped -> {target}")
            return 0
        print(f"colorplug: exists, left alone: {target} (use --overwrite to replace it or "
              "--skip-existing to skip it)", file=sys.stderr)
        return 1
    settings = EncodeSettings.for_output(target, args.codec, args.crf) if kind == "video" \
        else None
    name, options = backend_and_options(args.backend)
    name = name or default_backend()
    entry = default_registry().entry(name)
    if entry.info.needs_reference and not args.reference and args.temporal == "off":
        raise PlanError(f"backend {name!r} needs a colour reference image: pass "
                        "--reference FILE")
    references = [read_image(r) for r in args.reference or []]
    if args.intensity_range is not None:
        options["intensity_range"] = parse_range(args.intensity_range)
    suffix = target.suffix.lower() if kind == "pattern" else "." + args.output_format
    record = {"version": __version__, "input": str(source.resolve()),
              "input_stamp": _input_stamp(info), "target": str(target.resolve()),
              "backend": args.backend or name, "temporal": args.temporal,
              "references": [str(Path(r).resolve()) for r in args.reference or []],
              "intensity_range": args.intensity_range, "fps": str(info.rate),
              **({"codec": settings.codec, "crf": settings.crf,
                  "segment_frames": args.segment_frames} if settings else
                 {"output_format": suffix})}
    if kind != "video" and info.audio and not args.quiet:
        print(f"colorplug: warning: {source}: its audio is not written to image frames",
              file=sys.stderr)
    if info.sample_aspect and settings and settings.codec not in KEEPS_SAMPLE_ASPECT \
            and not args.quiet:
        print(f"colorplug: warning: {source}: its pixel aspect ratio {info.sample_aspect} is "
              f"not kept by {settings.codec} (H.264 and H.265 keep it)", file=sys.stderr)
    if (info.width % 2 or info.height % 2) and settings and settings.pix_fmt == "yuv420p" \
            and not args.quiet:
        print(f"colorplug: warning: {source}: {info.width}x{info.height} is padded to even "
              "sizes for 4:2:0 video (the last row or column repeated)", file=sys.stderr)

    overwrite = policy is ExistingPolicy.OVERWRITE
    work = WorkFolder(target)
    resumed = work.start(record, resume=args.resume, overwrite=overwrite)
    if kind == "video":
        done = work.frames_done()
        sink: Any = _SegmentSink(work, info, settings, args.segment_frames)
    else:
        name_of = _frame_namer(kind, target, info, suffix)
        done = _frames_present(work, name_of)
        sink = _FrameSink(work.frames_dir, name_of, done)
    if resumed and not args.quiet:
        print(f"colorplug: resuming {target} at frame {done}", file=sys.stderr)
    total = info.frames or (round(info.duration * info.rate) if info.duration else None)
    bar = tqdm(total=total, initial=done, desc=f"colorize ({name})", unit="frame",
               disable=args.quiet)
    stamps: deque[int] = deque()

    def gray():
        for pts, frame in read_frames(info, skip=done):
            stamps.append(pts)
            yield frame

    written = 0
    try:
        for rgb in colorize_video(gray(), name, temporal=args.temporal,
                                  references=references, options=options, device=args.device,
                                  batch_size=args.batch_size):
            sink.write(stamps.popleft(), rgb)
            written += 1
            bar.update()
        sink.close()
        bar.close()
        if kind == "video":
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_beside(target)
            try:
                mux_segments(work.segments(), tmp, info=info,
                             audio_from=source if info.audio else None)
                move_into_place(tmp, target, overwrite=overwrite)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            _place_frames(work, kind, target, overwrite)
    except BaseException as exc:
        bar.close()
        sink.abort()
        finished = work.frames_done() if kind == "video" else _frames_present(work, name_of)
        if isinstance(exc, VideoReadError) or not finished:
            work.remove()  # nothing a resume could use: leave nothing behind
            raise
        work.unlock()
        if isinstance(exc, KeyboardInterrupt):
            err(f"interrupted; {finished} finished frames are kept in {work.path}: run the "
                 "same command with --resume to continue")
            return 130
        if isinstance(exc, Exception):
            err(f"{finished} finished frames are kept in {work.path}: fix the problem below "
                 "and run the same command with --resume to continue")
        raise
    work.remove()
    say(f"{done + written} frames colorized" + (f" ({written} in this run)" if resumed else "")
        + f" -> {target}")
    return 0


def _frames_present(work: Any, name_of: Callable[[int], str]) -> int:
    """Frames of an image-sequence output already in the work folder (from the first on)."""
    done = 0
    while (work.frames_dir / name_of(done)).is_file():
        done += 1
    return done


def check_image_args(args: argparse.Namespace) -> None:
    """Refuse video-only flags for images; images take at most one --reference (the flag
    repeats for video keyframes): turn it back into one path."""
    for flag, given in (("--resume", args.resume), ("--codec", args.codec),
                        ("--crf", args.crf is not None), ("--fps", args.fps)):
        if given:
            hint = " (for folders of images, --skip-existing resumes)" \
                if flag == "--resume" else ""
            raise PlanError(f"{flag} applies to video and image-sequence inputs or outputs"
                            f"{hint}")
    refs = args.reference or []
    if len(refs) > 1:
        raise InputError("--reference is given once for images (several are keyframes for "
                         "video)")
    args.reference = refs[0] if refs else None
