"""`colorize_video`: colorize a stream of frames lazily (the shared video API).

This is the frame-by-frame (``temporal="off"``) version; the temporal modes (flow,
exemplar) come with colorplug.video.temporal.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import InputError
from ..protocol import Colorizer

TEMPORAL_MODES = ("off", "flow", "exemplar")


def colorize_video(frames: Iterable[np.ndarray], backend: str | Colorizer = None, *,
                   temporal: str = "off", references: Sequence[Any] = (),
                   keyframe_backend: str | None = None, options: dict | None = None,
                   device: str = "auto", batch_size: int = 8) -> Iterator[np.ndarray]:
    """Yield one (H, W, 3) uint8 RGB frame per input frame (gray or RGB), batch by batch,
    so memory does not grow with the length of the video."""
    if temporal not in TEMPORAL_MODES:
        raise InputError(f"temporal must be one of {', '.join(TEMPORAL_MODES)}; got {temporal!r}")
    if temporal != "off":
        raise InputError(f"temporal={temporal!r} is not available in this build; use 'off'")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1; got {batch_size}")
    if isinstance(backend, str) or backend is None:
        from .. import get

        colorizer = get(backend, device=device, **(options or {}))
    else:
        colorizer = backend
    reference = references[0] if references else None
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == batch_size:
            yield from colorizer.colorize_batch(batch, reference=reference)
            batch = []
    if batch:
        yield from colorizer.colorize_batch(batch, reference=reference)
