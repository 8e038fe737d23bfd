"""``colorplug eval --video``: flicker and accuracy of backends x temporal modes on a clip.
Builds on the photo evaluation (`colorplug.evaluate`) and the video metrics; neither
imports this module."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..evaluate import gray_input, parse_backend_spec
from ..image import convert_dtype, intensity_to_unit


def evaluate_video(video: str | Path, *, backends: Sequence[str], modes: Sequence[str],
                   truth: str | Path | None = None, device: str = "auto",
                   progress: Callable[[int], None] | None = None) -> dict[str, dict[str, Any]]:
    """Flicker (warp error, CDC; RGB and a*b*) of each backend x temporal mode on a clip,
    plus PSNR / colourfulness against colour ground truth: `truth`, or the clip itself
    when it is in colour (its gray input is then made from its L*, as for photos). Frames
    across a shot cut of the gray input are not compared."""
    from ..image import prepare
    from . import colorize_video
    from ._read import read_frames
    from .metrics import VideoMetrics
    from .temporal import ShotDetector

    results: dict[str, dict[str, Any]] = {}
    for spec in backends:
        label, name, options = parse_backend_spec(spec)
        for mode in modes:
            frames = read_frames(video)
            truths = read_frames(truth, what="--truth") if truth else None
            pairs = _gray_and_truth(frames, truths)
            first = next(pairs, None)
            if first is None:
                from ..errors import InputError
                raise InputError(f"--video: {video} has no frames")
            pairs = _chain(first, pairs)
            held: list[tuple[np.ndarray, np.ndarray | None]] = []

            def grays():  # the colorizer pulls grays; the metric reads them back in order
                for g, t in pairs:
                    held.append((g, t))
                    yield g

            metrics, shots = VideoMetrics(), ShotDetector()
            t0 = time.perf_counter()
            for i, out in enumerate(colorize_video(grays(), name, temporal=mode,
                                                   options=options, device=device)):
                g, t = held.pop(0)
                cut = shots(prepare(g).lightness) and i > 0
                metrics.add(out, g, t, new_shot=cut)
                if progress:
                    progress(i + 1)
            seconds = time.perf_counter() - t0
            results[f"{label}/{mode}"] = {**metrics.summary(), "seconds": seconds}
    return results


def _gray_and_truth(frames: Any, truths: Any) -> Any:
    """(gray uint8 input, colour truth or None) per frame."""
    for i, frame in enumerate(frames):
        t = next(truths, None) if truths is not None else None
        if truths is not None and t is None:
            from ..errors import InputError
            raise InputError(f"--truth has fewer frames than --video ({i})")
        gray = frame
        if frame.ndim == 3:
            rgb = frame[..., :3] if frame.dtype == np.uint8 else \
                convert_dtype(intensity_to_unit(frame[..., :3], "dtype"), "uint8")
            gray, t = gray_input(rgb), (rgb if t is None else t)
        yield gray, (None if t is None else np.asarray(t)[..., :3])


def _chain(first: Any, rest: Any) -> Any:
    yield first
    yield from rest


def format_video_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per backend/mode: warp error and CDC on RGB and a*b*, PSNR, CF."""
    head = (f"{'backend/mode':<22}{'frames':>7}{'warpErr':>10}{'warpErr_ab':>11}{'CDC':>9}"
            f"{'CDC_ab':>9}{'PSNR':>8}{'CF':>7}{'CF_gt':>7}{'s':>7}")
    lines = [head, "-" * len(head)]
    nan = float("nan")
    for key, r in results.items():
        lines.append(f"{key:<22}{r['frames']:>7d}{r['warp_error']:>10.2e}"
                     f"{r['warp_error_ab']:>11.2e}{r['cdc']:>9.5f}{r['cdc_ab']:>9.5f}"
                     f"{r.get('psnr', nan):>8.2f}{r.get('cf', nan):>7.2f}"
                     f"{r.get('cf_truth', nan):>7.2f}{r['seconds']:>7.1f}")
    return "\n".join(lines)
