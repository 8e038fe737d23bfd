"""Qt-free logic of the napari widget: slice iteration and layer-to-colorplug plumbing.

Kept apart from the widget so it can be tested and reused without a viewer.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

import colorplug


def plane_shape(data: Any, rgb: bool) -> tuple[tuple[int, ...], tuple[int, int]]:
    """(leading shape, (H, W)) of layer data; the last two (or three for RGB) axes are a plane."""
    shape = tuple(int(s) for s in data.shape)
    plane = shape[-3:-1] if rgb else shape[-2:]
    lead = shape[:-3] if rgb else shape[:-2]
    if len(plane) != 2 or 0 in shape:
        raise colorplug.InputError(f"layer data of shape {shape} has no 2-D image plane")
    return lead, (plane[0], plane[1])


#: Pixels that go through the network together at most: small planes are batched (faster),
#: planes of 512 x 512 and more go one by one, so a cancel or a progress step never waits
#: for more than one large plane.
BATCH_PIXELS = 4 * 256 * 256


def colorize_stack(data: Any, colorizer: Any, *, rgb: bool, reference: Any = None,
                   hints: Any = None, unhinted: Any = None, batch_size: int = 4
                   ) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """Colorize every plane of an nD layer, up to `batch_size` planes (and `BATCH_PIXELS`)
    at a time through the network (dask arrays are read per chunk); the reference is
    prepared once.

    ``hints`` may be per plane (an object with ``hints_for(index)``, see _hints.PlaneHints);
    a plane without hints is colorized by ``unhinted`` (e.g. gray) when given.

    Yields (done, total, None) after each plane, and finally (total, total, result) with
    the uint8 RGB result of shape data.shape (+ 3 unless already RGB). Stopping the
    iteration early leaves nothing half-written.
    """
    lead, (h, w) = plane_shape(data, rgb)
    total = int(np.prod(lead)) if lead else 1
    out = np.empty(lead + (h, w, 3), np.uint8)
    if reference is not None and hasattr(colorizer, "prepare_reference"):
        reference = colorizer.prepare_reference(reference)  # once per run, not per plane
    per_plane = hasattr(hints, "hints_for")
    indices = list(np.ndindex(*lead)) if lead else [()]
    done = 0
    step = 1 if per_plane else max(1, min(batch_size, BATCH_PIXELS // max(1, h * w)))
    for start in range(0, len(indices), step):
        chunk = indices[start:start + step]
        if per_plane:
            idx = chunk[0]
            use, plane_hints = colorizer, hints.hints_for(idx)
            if plane_hints is None and unhinted is not None:
                use, ref = unhinted, None
            else:
                ref = reference
            results = [use.colorize(np.asarray(data[idx]), reference=ref, hints=plane_hints)]
        else:  # planes of one shape go through the network together
            results = colorizer.colorize_batch([np.asarray(data[idx]) for idx in chunk],
                                               reference=reference, hints=hints)
        for idx, result in zip(chunk, results):
            out[idx] = result[..., :3]
            done += 1
            yield done, total, None
    yield total, total, out


def colorize_time(data: Any, colorizer: Any, *, rgb: bool, temporal: str = "flow",
                  references: Any = (), device: str = "auto", batch_size: int = 4
                  ) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """Colorize a layer whose first axis is time with `colorplug.video.colorize_video`
    (temporal mode "off", "flow" or "exemplar"); further leading axes (e.g. z) are
    separate videos. Yields like `colorize_stack`: (done, total, None) per frame, then
    (total, total, result)."""
    from colorplug.video import colorize_video

    lead, (h, w) = plane_shape(data, rgb)
    if not lead:
        raise colorplug.InputError("the time axis needs a layer with a leading axis "
                                   "(time first: T x Y x X); this layer is a single image")
    total = int(np.prod(lead))
    out = np.empty(lead + (h, w, 3), np.uint8)
    done = 0
    for inner in (np.ndindex(*lead[1:]) if len(lead) > 1 else [()]):
        frames = (np.asarray(data[(t,) + inner]) for t in range(lead[0]))
        for t, frame in enumerate(colorize_video(frames, colorizer, temporal=temporal,
                                                 references=references, device=device,
                                                 batch_size=batch_size)):
            out[(t,) + inner] = frame
            done += 1
            yield done, total, None
    yield total, total, out


def run_sync(data: Any, colorizer: Any, *, rgb: bool, reference: Any = None, hints: Any = None,
             on_progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> np.ndarray | None:
    """Drive `colorize_stack` in the calling thread; None if stopped."""
    for done, total, result in colorize_stack(data, colorizer, rgb=rgb, reference=reference,
                                              hints=hints):
        if result is not None:
            return result
        if on_progress:
            on_progress(done, total)
        if should_stop and should_stop():
            return None
    return None
