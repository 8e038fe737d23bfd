"""Video and image-sequence I/O: gray frames in, colour frames out, one frame at a time.

Decoding and encoding go through PyAV (FFmpeg), imported only when a video is touched
(`require_av`); image sequences (a folder of frames or a printf pattern such as
``frame_%05d.png``) through `colorplug.image`. Frames are decoded straight to gray (the
luma plane) since colorplug keeps only lightness; the display rotation of a file is applied
to the pixels. Timestamps are kept in the source's own time base, so the frame rate stays
exact (e.g. 30000/1001) and variable-rate files keep their timing.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import InputError, OutputError

#: Suffixes read as video files (anything FFmpeg opens works; these route the CLI).
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts",
                  ".mts", ".m2ts", ".wmv", ".flv", ".ogv", ".nut", ".gif"}
#: Video files colorplug writes: the FFmpeg muxer and the default codec of each suffix.
OUTPUT_FORMATS = {".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"),
                  ".mov": ("mov", "libx264"), ".mkv": ("matroska", "libx264"),
                  ".webm": ("webm", "libvpx-vp9")}
#: Constant-quality defaults per codec (lower is better quality, larger files).
DEFAULT_CRF = {"libx264": 20, "libx265": 24, "libvpx-vp9": 31, "libaom-av1": 30,
               "libsvtav1": 35}
#: Encoders whose bitstream carries the pixel aspect ratio (PyAV cannot set a container's).
KEEPS_SAMPLE_ASPECT = {"libx264", "libx265"}
#: The frame rate of an image sequence when none is given.
DEFAULT_SEQUENCE_FPS = Fraction(25)
EXTRA_HINT = 'pip install "colorplug[video]"'
_PATTERN_RE = re.compile(r"%(0?)(\d*)d")


class VideoReadError(InputError):
    """A video or image sequence cannot be read (not a video, truncated, corrupt)."""

    kind = "bad_video"


def require_av(what: str = "reading and writing video") -> Any:
    """Import PyAV, or explain which extra installs it."""
    try:
        import av
    except ImportError:
        raise InputError(f"{what} needs PyAV (FFmpeg), which is not installed: "
                         f"{EXTRA_HINT}") from None
    return av


def is_pattern(path: str | os.PathLike) -> bool:
    """Whether `path` is a printf-style frame pattern (``frame_%05d.png``)."""
    return _PATTERN_RE.search(Path(path).name) is not None


def is_video_file(path: str | os.PathLike) -> bool:
    """Whether `path` names a video file by its suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def pattern_name(pattern: str | os.PathLike, index: int) -> Path:
    """The file a printf pattern names for frame `index`."""
    pattern = Path(pattern)
    return pattern.with_name(pattern.name % index)


def pattern_files(pattern: str | os.PathLike) -> list[Path]:
    """The existing files a printf pattern matches, in frame-number order."""
    pattern = Path(pattern)
    m = _PATTERN_RE.search(pattern.name)
    width = int(m.group(2) or 0)
    digits = rf"\d{{{width},}}" if m.group(1) and width else r"\d+"
    rx = re.compile(re.escape(pattern.name[:m.start()]) + f"({digits})" +
                    re.escape(pattern.name[m.end():]) + "$")
    folder = pattern.parent
    if not folder.is_dir():
        return []
    found = [(int(mm.group(1)), f) for f in folder.iterdir()
             if (mm := rx.match(f.name)) and f.is_file()]
    return [f for _, f in sorted(found)]


def pattern_number(pattern: str | os.PathLike, file: str | os.PathLike) -> int:
    """The frame number of a file a printf pattern matched."""
    name = Path(pattern).name
    m = _PATTERN_RE.search(name)
    head, tail = name[:m.start()], name[m.end():]
    return int(Path(file).name[len(head):len(Path(file).name) - len(tail)])


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def sequence_files(source: str | os.PathLike) -> list[Path]:
    """The frames of an image sequence (a folder or a printf pattern), in order."""
    from ..image import IMAGE_SUFFIXES

    source = Path(source)
    if is_pattern(source):
        files = pattern_files(source)
    elif source.is_dir():
        files = sorted((f for f in source.iterdir()
                        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    else:
        raise VideoReadError(f"{source}: not a folder of frames or a frame pattern")
    if not files:
        raise VideoReadError(f"{source}: no image frames found")
    return files


@dataclass(frozen=True)
class VideoInfo:
    """What a source is: its upright size, timing and what else it carries."""

    path: Path
    width: int                 # after the display rotation
    height: int
    rate: Fraction             # frames per second (average)
    time_base: Fraction        # of the timestamps `read_frames` yields
    frames: int | None         # frame count when the container knows it
    sample_aspect: Fraction | None  # pixel aspect ratio (after rotation), None when square
    rotation: int              # degrees counter-clockwise applied to the pixels
    audio: str | None          # codec of the first audio stream, if any
    kind: str = "video"        # "video" or "sequence"
    duration: float | None = None  # seconds the video stream lasts, when the file says


def _decode_error(path: Path, exc: Exception, where: str = "") -> InputError:
    why = getattr(exc, "strerror", None) or str(exc)
    return VideoReadError(f"{path}: not a readable video{where} ({why})")


def _rotation(frame: Any, stream: Any, path: Path | None = None) -> int:
    """Counter-clockwise degrees (a multiple of 90) that make a frame upright; a display
    rotation between multiples of 90 is rounded to the nearest one, with a warning."""
    angle = getattr(frame, "rotation", None)
    if not angle:
        try:  # files tagged the old way (stream metadata rotate=, clockwise)
            angle = -int(stream.metadata.get("rotate", 0))
        except ValueError:
            angle = 0
    turned = int(round(angle / 90.0)) * 90 % 360
    if (angle - turned) % 360:
        warnings.warn(f"{path or 'the video'}: its display rotation is {angle:g} degrees; "
                      f"colorplug turns frames by multiples of 90 degrees and uses {turned}",
                      stacklevel=3)
    return turned


def _stream_seconds(stream: Any) -> float | None:
    """How long a video stream says it lasts (its duration, or Matroska's DURATION tag)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    try:
        h, m, sec = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except (AttributeError, ValueError):
        return None


def _upright(gray: np.ndarray, rotation: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(gray, rotation // 90)) if rotation else gray


def check_frame_size(path: str | os.PathLike, stream: Any, *, allow_huge: bool) -> None:
    """Refuse a video whose header announces frames over the decompression-bomb limit
    (`colorplug.image.codecs.pixel_limit`), before a frame is decoded."""
    from ..image.codecs import check_pixel_count

    ctx = stream.codec_context
    width, height = ctx.width or 0, ctx.height or 0
    if width and height:
        check_pixel_count(path, width * height, allow_huge=allow_huge)


def probe(path: str | os.PathLike, *, fps: Fraction | None = None,
          allow_huge: bool = False) -> VideoInfo:
    """Describe a video file or an image sequence, decoding its first frame to check it
    (frames whose header announces more pixels than the bomb limit are refused first)."""
    path = Path(path)
    if not is_video_file(path) and (is_pattern(path) or path.is_dir()):
        return _probe_sequence(path, fps or DEFAULT_SEQUENCE_FPS)
    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    av = require_av()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            check_frame_size(path, stream, allow_huge=allow_huge)
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoReadError(f"{path}: no video frame could be decoded")
            rotation = _rotation(first, stream, path)
            ctx = stream.codec_context
            width, height = first.width, first.height
            sar = stream.sample_aspect_ratio or getattr(ctx, "sample_aspect_ratio", None)
            sar = Fraction(sar) if sar and sar != 1 else None
            if rotation in (90, 270):
                width, height = height, width
                sar = 1 / sar if sar else None
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            audio = container.streams.audio[0].codec_context.name \
                if container.streams.audio else None
            return VideoInfo(path, width, height, Fraction(rate) if rate else Fraction(25),
                             Fraction(stream.time_base or first.time_base),
                             stream.frames or None, sar, rotation, audio,
                             duration=_stream_seconds(stream))
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _decode_error(path, exc) from None


def _probe_sequence(source: Path, fps: Fraction) -> VideoInfo:
    files = sequence_files(source)
    first = _read_frame(files[0])
    return VideoInfo(source, first.shape[1], first.shape[0], fps, 1 / fps, len(files), None,
                     0, None, kind="sequence")


def read_frames(info: VideoInfo, *, skip: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(pts, gray)`` per frame, upright, after skipping the first `skip` frames.

    Video frames come as uint8 (or uint16 for deeper sources) luma; timestamps are in
    ``info.time_base`` and strictly increasing. A decoding error mid-file is an InputError
    naming the file and the frame."""
    if info.kind == "sequence":
        yield from _read_sequence(info, skip)
        return
    av = require_av()
    step = max(1, round(1 / (info.rate * info.time_base))) if info.rate else 1
    last = None
    index = 0
    try:
        with av.open(str(info.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                index += 1
                if index <= skip:
                    continue
                pts = frame.pts if frame.pts is not None else (index - 1) * step
                if last is not None and pts <= last:
                    pts = last + 1
                last = pts
                deep = any(c.bits > 8 for c in frame.format.components)
                gray = frame.to_ndarray(format="gray16le" if deep else "gray")
                yield pts, _upright(gray, info.rotation)
    except (av.FFmpegError, OSError) as exc:
        raise _decode_error(info.path, exc, f" (at frame {index})") from None
    if info.frames and index < info.frames:  # the container promised more: cut short
        raise VideoReadError(f"{info.path}: truncated or corrupt: {index} of its "
                             f"{info.frames} frames could be decoded")
    if not info.frames and info.duration and last is not None and info.rate:
        end = float(last * info.time_base + 1 / info.rate)  # lenient: from 0, not the start
        if end < info.duration - 2 / float(info.rate):
            raise VideoReadError(f"{info.path}: truncated or corrupt: frames end at "
                                 f"{end:.2f} s of its {info.duration:.2f} s")


def _read_frame(path: Path) -> np.ndarray:
    from ..image import read_image

    try:
        return read_image(path)
    except InputError as exc:
        raise VideoReadError(str(exc)) from None


def _read_sequence(info: VideoInfo, skip: int) -> Iterator[tuple[int, np.ndarray]]:
    for index, f in enumerate(sequence_files(info.path)):
        if index < skip:
            continue
        frame = _read_frame(f)
        if frame.shape[:2] != (info.height, info.width):
            raise VideoReadError(f"{f}: frame is {frame.shape[1]}x{frame.shape[0]}, the sequence "
                             f"started at {info.width}x{info.height}")
        yield index, frame


# ------------------------------------------------------------------------------- writing
@dataclass(frozen=True)
class EncodeSettings:
    """How colour frames become a video stream."""

    codec: str
    crf: int | None
    pix_fmt: str = "yuv420p"

    @classmethod
    def for_output(cls, output: Path, codec: str | None, crf: int | None) -> "EncodeSettings":
        """Defaults by container (.webm: VP9, else H.264), checked against FFmpeg."""
        av = require_av()
        fmt, default = OUTPUT_FORMATS[output.suffix.lower()]
        codec = codec or default
        try:
            c = av.Codec(codec, "w")
        except Exception:
            raise InputError(f"--codec {codec}: FFmpeg has no such encoder") from None
        if c.type != "video":
            raise InputError(f"--codec {codec}: not a video encoder")
        import io as _io

        with av.open(_io.BytesIO(), "w", format=fmt) as probe_out:
            try:
                probe_out.add_stream(codec)
            except ValueError:
                raise InputError(f"--codec {codec}: {output.suffix} files cannot hold it") from None
        formats = {f.name for f in (c.video_formats or ())}
        pix_fmt = "yuv420p" if not formats or "yuv420p" in formats else sorted(formats)[0]
        if crf is not None and not 0 <= crf <= 63:
            raise InputError(f"--crf must be between 0 and 63; got {crf}")
        return cls(codec, crf if crf is not None else DEFAULT_CRF.get(codec), pix_fmt)


def even_size(width: int, height: int) -> tuple[int, int]:
    """4:2:0 video needs even sizes: the padded size of a frame."""
    return width + width % 2, height + height % 2


class SegmentWriter:
    """Encode colour frames into one segment file (FFmpeg's NUT container, which keeps any
    codec and the exact timestamps), later remuxed into the final file without re-encoding."""

    def __init__(self, path: Path, info: VideoInfo, settings: EncodeSettings) -> None:
        av = require_av()
        self._av = av
        self.path = path
        self.container = av.open(str(path), "w", format="nut")
        stream = self.container.add_stream(settings.codec, rate=info.rate)
        stream.width, stream.height = even_size(info.width, info.height)
        stream.pix_fmt = settings.pix_fmt
        stream.time_base = info.time_base
        ctx = stream.codec_context
        ctx.time_base = info.time_base
        if info.sample_aspect:
            ctx.sample_aspect_ratio = info.sample_aspect
        options = {}
        if settings.crf is not None:
            options["crf"] = str(settings.crf)
        if settings.codec == "libx265":
            options["x265-params"] = "log-level=error"
        if settings.codec == "libvpx-vp9":
            options.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
        self._yuv = settings.pix_fmt.startswith("yuv")
        if self._yuv:  # BT.709, limited range, tagged so players decode what was meant
            for key in ("colorspace", "color_primaries", "color_trc", "color_range"):
                try:
                    setattr(ctx, key, 1)
                except (AttributeError, ValueError, TypeError):
                    pass
        stream.options = options
        self.stream = stream
        self.time_base = info.time_base
        self.frames = 0

    def write(self, pts: int, rgb: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 frame at `pts` (in the source's time base)."""
        h, w = self.stream.height, self.stream.width
        if rgb.shape[:2] != (h, w):  # odd sizes: repeat the last row / column
            rgb = np.pad(rgb, ((0, h - rgb.shape[0]), (0, w - rgb.shape[1]), (0, 0)), mode="edge")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if self._yuv:
            frame = frame.reformat(format=self.stream.pix_fmt, dst_colorspace="ITU709",
                                   dst_color_range="MPEG")
        frame.pts = pts
        frame.time_base = self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def abort(self) -> None:
        """Close without flushing (the file is discarded)."""
        try:
            self.container.close()
        except Exception:
            pass


def _audio_packets(av: Any, source: Path, out: Any, suffix: str) -> tuple[Any, Any]:
    """Open the source's first audio stream and an output stream for it: remuxed when the
    container takes the codec, else transcoded (AAC; Opus for WebM). Returns
    (input container, packet iterator) or (None, None) without audio."""
    inp = av.open(str(source))
    if not inp.streams.audio:
        inp.close()
        return None, None
    a_in = inp.streams.audio[0]
    try:
        a_out = out.add_stream_from_template(a_in)
    except (ValueError, av.FFmpegError):
        a_out = None
    if a_out is not None:
        def remux() -> Iterator[Any]:
            for packet in inp.demux(a_in):
                if packet.dts is None:
                    continue
                packet.stream = a_out
                yield packet
        return inp, remux()
    codec = "libopus" if suffix == ".webm" else "aac"
    rate = a_in.codec_context.sample_rate or 48000
    if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
        rate = 48000
    a_out = out.add_stream(codec, rate=rate)
    try:
        a_out.layout = a_in.codec_context.layout.name
    except (AttributeError, ValueError):
        pass

    def transcode() -> Iterator[Any]:
        for packet in inp.demux(a_in):
            for frame in packet.decode():
                frame.pts = None  # let the encoder count samples
                yield from a_out.encode(frame)
        yield from a_out.encode()
    return inp, transcode()


def _true_timestamps(av: Any, segments: list[tuple[Path, list[int]]]) -> list[list[int]]:
    """Per segment, the source timestamp of each packet in decode order. A container may
    shift or rescale timestamps (NUT avoids negative ones), but keeps their order: the k-th
    smallest packet timestamp belongs to the k-th frame written."""
    result = []
    for path, written in segments:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stamps = [p.pts for p in container.demux(stream) if p.size]
        if len(stamps) != len(written) or None in stamps:
            raise OutputError(f"{path}: the segment holds {len(stamps)} packets for "
                              f"{len(written)} frames; delete the work folder and start over")
        rank = {ts: i for i, ts in enumerate(sorted(stamps))}
        ordered = sorted(written)
        result.append([ordered[rank[ts]] for ts in stamps])
    return result


def _decode_stamps(pts: list[int], step: int) -> list[int]:
    """Decode timestamps for packets in decode order with presentation stamps `pts`: the
    smallest reorder delay d with dts[i] = sorted(pts)[i - d] <= pts[i], as encoders set."""
    ordered = sorted(pts)
    rank = {ts: i for i, ts in enumerate(ordered)}
    delay = max([0] + [i - rank[ts] for i, ts in enumerate(pts)])
    return [ordered[i - delay] if i >= delay else ordered[0] - (delay - i) * step
            for i in range(len(pts))]


def mux_segments(segments: Iterable[tuple[Path, list[int]]], target: Path, *,
                 info: VideoInfo, audio_from: Path | None) -> None:
    """Remux finished segments ``(file, source timestamps of its frames)`` and the source's
    audio into `target` (a temporary the caller moves into place); nothing is re-encoded
    except audio the container does not take."""
    av = require_av()
    segments = list(segments)
    fmt = OUTPUT_FORMATS[_output_suffix(target)][0]
    time_base = Fraction(info.time_base)
    step = max(1, round(1 / (info.rate * time_base))) if info.rate else 1
    try:
        stamps = _true_timestamps(av, segments)
        flat = [ts for seg in stamps for ts in seg]
        dts = iter(_decode_stamps(flat, step))
        ordered = sorted(flat)
        durations = {a: b - a for a, b in zip(ordered, ordered[1:])}
        inputs = [av.open(str(p)) for p, _ in segments]
    except (av.FFmpegError, OSError) as exc:
        raise OutputError(f"cannot read the segments of {target}: {exc}") from None
    audio_in = None
    try:
        with av.open(str(target), "w", format=fmt) as out:
            v_out = out.add_stream_from_template(inputs[0].streams.video[0])
            v_out.time_base = time_base
            if info.rate:
                v_out.codec_context.framerate = info.rate  # matroska: DefaultDuration
            audio = None
            if audio_from is not None:
                audio_in, audio = _audio_packets(av, audio_from, out, _output_suffix(target))

            def video() -> Iterator[Any]:
                for container, seg in zip(inputs, stamps):
                    packets = (p for p in container.demux(container.streams.video[0]) if p.size)
                    for packet, pts in zip(packets, seg):
                        packet.stream = v_out
                        packet.time_base = time_base
                        packet.pts, packet.dts = pts, next(dts)
                        packet.duration = durations.get(pts, step)
                        yield packet

            for packet in _interleave(video(), audio):
                out.mux(packet)
    except (av.FFmpegError, OSError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise OutputError(f"cannot write {target}: {why}") from None
    finally:
        for c in inputs + ([audio_in] if audio_in is not None else []):
            c.close()


def _output_suffix(target: Path) -> str:
    """The format suffix of a final file or of its temporary (`colorplug.files`)."""
    from ..files import final_name_of

    return Path(final_name_of(target)).suffix.lower()


def _seconds(packet: Any) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base) if ts is not None else 0.0


def _interleave(video: Iterator[Any], audio: Iterator[Any] | None) -> Iterator[Any]:
    """Packets of both streams in time order (the muxer expects roughly that)."""
    if audio is None:
        yield from video
        return
    import heapq

    yield from heapq.merge(video, audio, key=_seconds)
