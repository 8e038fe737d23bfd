"""Qt-free logic of the napari widget: slice iteration and layer-to-colorplug plumbing.

Kept apart from the widget so it can be tested and reused without a viewer.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

import colorplug


def plane_shape(data: Any, rgb: bool) -> tuple[tuple[int, ...], tuple[int, int]]:
    """(leading shape, (H, W)) of layer data (or of a shape tuple); the last two (or three
    for RGB) axes are a plane."""
    shape = tuple(int(s) for s in (data if isinstance(data, tuple) else data.shape))
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


# ------------------------------------------------------------------ multiscale layers
#: Planes of a multiscale layer's full-resolution level up to this many pixels are
#: colorized whole, like any plane: the pipeline already works in row strips at full size
#: (~14 bytes per pixel besides the input). Larger planes go in tiles (`_colorize_tiled`).
PLANE_PIXELS = 4096 * 4096
#: Side of the tiles a large plane is read, converted and recombined in.
TILE = 2048
#: Longest side of the lightness overview a large plane's chroma is predicted from: at
#: least the largest working size a backend is given (the widget's maximum is 4096).
OVERVIEW = 4096


def _tile_grid(h: int, w: int) -> tuple[int, list[tuple[int, int, int, int]]]:
    """(overview factor f, tiles (r0, r1, c0, c1)) of a large plane; tile sides are
    multiples of f, so each tile shrinks to whole blocks of the overview."""
    f = max(1, -(-max(h, w) // OVERVIEW))
    side = max(f, TILE // f * f)
    return f, [(r0, min(h, r0 + side), c0, min(w, c0 + side))
               for r0 in range(0, h, side) for c0 in range(0, w, side)]


def _plane_steps(h: int, w: int) -> int:
    """Progress steps of one plane: 1 when colorized whole; in tiles, one per tile for the
    overview, one for the chroma prediction and one per tile for the recombination."""
    if h * w <= PLANE_PIXELS:
        return 1
    return 2 * len(_tile_grid(h, w)[1]) + 1


def _pyramid_steps(shapes: list[tuple[int, ...]], rgb: bool) -> int:
    """One step per plane of each lower level."""
    return sum(int(np.prod(plane_shape(tuple(s), rgb)[0])) for s in shapes[1:])


def multiscale_steps(shapes: Any, rgb: bool, *, tiles: bool = True) -> int:
    """Progress steps of `colorize_multiscale` on levels of these shapes (``tiles=False``:
    level 0 is colorized one step per plane, as by `colorize_time`)."""
    shapes = [tuple(int(v) for v in s) for s in shapes]
    lead, (h, w) = plane_shape(shapes[0], rgb)
    per_plane = _plane_steps(h, w) if tiles else 1
    return int(np.prod(lead)) * per_plane + _pyramid_steps(shapes, rgb)


def _chroma_pipeline(colorizer: Any) -> Any:
    """The `ChromaColorizer` behind a colorizer (plugins come wrapped), or None."""
    from colorplug.pipeline import ChromaColorizer

    inner = getattr(colorizer, "inner", colorizer)
    return inner if isinstance(inner, ChromaColorizer) else None


def _fixed_range(intensity_range: Any, rgb: bool, dtype: Any) -> bool:
    """Whether intensities map to lightness the same way in every tile: a (lo, hi) range
    (the widget always gives the contrast limits), "dtype", or None where that means the
    dtype's range. A percentile range depends on the pixels seen, so not per tile."""
    if isinstance(intensity_range, str):
        return intensity_range == "dtype"
    if intensity_range is None:
        return rgb or np.dtype(dtype) == np.uint8
    return True


def _block_mean(values: np.ndarray, f: int) -> np.ndarray:
    """Means of f x f blocks (the last ones partial) of an (H, W) map."""
    if f == 1:
        return values
    rows, cols = np.arange(0, values.shape[0], f), np.arange(0, values.shape[1], f)
    sums = np.add.reduceat(np.add.reduceat(values, rows, axis=0, dtype=np.float32), cols,
                           axis=1)
    counts = np.outer(np.diff(np.append(rows, values.shape[0])),
                      np.diff(np.append(cols, values.shape[1])))
    return (sums / counts).astype(np.float32)


class _TileUpsampler:
    """The pipeline's bilinear resampling (half-pixel centres) of a small a*b* map to the
    plane's (H, W), handed out by tile: tiles agree at their borders, so no seams."""

    def __init__(self, small: np.ndarray, h: int, w: int) -> None:
        from colorplug.pipeline import axis_weights

        self.small = np.ascontiguousarray(small, dtype=np.float32)
        self.y = axis_weights(h, self.small.shape[0])
        self.x = axis_weights(w, self.small.shape[1])

    def tile(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        y0, y1, wy = (a[r0:r1] for a in self.y)
        x0, x1, wx = (a[c0:c1] for a in self.x)
        lo = int(y0.min())
        band = self.small[lo:int(y1.max()) + 1]  # only the small rows this tile needs
        left = band[:, x0]
        rows = left + (band[:, x1] - left) * wx[None, :, None]
        top, bottom = rows[y0 - lo], rows[y1 - lo]
        bottom -= top  # in place, as the pipeline's _Upsampler: no further temporaries
        bottom *= wy[:, None, None]
        bottom += top
        return bottom


def _colorize_tiled(level: Any, idx: tuple, hw: tuple[int, int], chroma: Any, reference: Any,
                    dest: np.ndarray) -> Iterator[None]:
    """Colorize plane `idx` of a large level into `dest` (H, W, 3) in tiles; yields once per
    step (see `_plane_steps`).

    Not tiles colorized one by one: the pipeline predicts chroma from the whole plane
    brought to a working size, so a tile would get colours of its own (seams, and a plane
    coloured unlike the same image whole). Instead (1) the tiles' full-resolution
    lightness, shrunk by f x f block means, makes an overview of at most OVERVIEW pixels
    a side; (2) the backend predicts chroma from it once, as it would from the whole plane
    (it brings it to its working size itself); (3) each tile's own full-resolution
    lightness is recombined with that chroma, upsampled at the tile's place in the plane:
    the whole plane's result, no overlap needed, memory bounded by a tile.
    """
    from colorplug.image import prepare
    from colorplug.pipeline import recombine

    h, w = hw
    f, tiles = _tile_grid(h, w)

    def lightness(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        part = np.asarray(level[idx + (slice(r0, r1), slice(c0, c1))])
        return prepare(part, intensity_range=chroma.intensity_range).lightness

    overview = np.empty((-(-h // f), -(-w // f)), np.float32)
    for r0, r1, c0, c1 in tiles:
        overview[r0 // f:-(-r1 // f), c0 // f:-(-c1 // f)] = _block_mean(
            lightness(r0, r1, c0, c1), f)
        yield
    with chroma.memory_errors([overview]):  # what the model sees: the overview
        ref = chroma.reference_lab(reference)
        small = chroma.checked_chroma(chroma.predict_chroma(
            [overview], reference=ref, hints=chroma.checked_hints(None)), 1)[0]
    yield
    ab = _TileUpsampler(small, h, w)
    for r0, r1, c0, c1 in tiles:
        dest[r0:r1, c0:c1] = recombine(lightness(r0, r1, c0, c1), ab.tile(r0, r1, c0, c1),
                                       None, "uint8")
        yield


def _colorize_level0(level: Any, colorizer: Any, *, rgb: bool, reference: Any, hints: Any,
                     unhinted: Any) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """Like `colorize_stack` over a multiscale layer's full-resolution level, with planes
    over PLANE_PIXELS in tiles (`_colorize_tiled`). A plane goes whole where tiles cannot
    give the whole plane's result: a plane with hints (hints are full-resolution maps), a
    backend that is not a ChromaColorizer, a data-dependent intensity range."""
    lead, (h, w) = plane_shape(level, rgb)
    steps = _plane_steps(h, w)
    if steps == 1:  # every plane fits: batched like any stack
        yield from colorize_stack(level, colorizer, rgb=rgb, reference=reference, hints=hints,
                                  unhinted=unhinted)
        return
    total = int(np.prod(lead)) * steps
    out = np.empty(lead + (h, w, 3), np.uint8)
    if reference is not None and hasattr(colorizer, "prepare_reference"):
        reference = colorizer.prepare_reference(reference)
    per_plane = hasattr(hints, "hints_for")
    done = 0
    for idx in (list(np.ndindex(*lead)) if lead else [()]):
        use, plane_hints, ref = colorizer, hints, reference
        if per_plane:
            plane_hints = hints.hints_for(idx)
            if plane_hints is None and unhinted is not None:
                use, ref = unhinted, None
        chroma = _chroma_pipeline(use)
        if (plane_hints is None and chroma is not None
                and _fixed_range(chroma.intensity_range, rgb, level.dtype)):
            for _ in _colorize_tiled(level, idx, (h, w), chroma, ref, out[idx]):
                done += 1
                yield done, total, None
        else:
            out[idx] = use.colorize(np.asarray(level[idx]), reference=ref,
                                    hints=plane_hints)[..., :3]
            done += steps
            yield done, total, None
    yield total, total, out


def _axis_boxes(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, counts) of the source ranges averaged into each of m outputs from n inputs.
    Shrinking by an integer factor k (m = n / k rounded up or down, as pyramids are made):
    blocks of k, the last one taking what is left; another ratio: blocks in proportion;
    not shrinking: the nearest input."""
    if m >= n:
        starts = np.minimum(((np.arange(m) + 0.5) * n / m).astype(np.int64), n - 1)
        return starts, np.ones(m, np.int64)
    k = max(1, round(n / m))
    if k > 1 and m in (-(-n // k), n // k):
        starts = np.arange(m, dtype=np.int64) * k
    else:
        starts = np.arange(m, dtype=np.int64) * n // m
    return starts, np.diff(np.append(starts, n))


def _shrink_axis(values: np.ndarray, axis: int, starts: np.ndarray, counts: np.ndarray
                 ) -> np.ndarray:
    """Means over the (starts, counts) ranges along one axis, float32."""
    m = len(starts)
    if np.all(counts == 1):
        if m == values.shape[axis]:
            return values.astype(np.float32)
        return np.take(values, starts, axis=axis).astype(np.float32)
    k = int(counts[0])
    if np.array_equal(starts, np.arange(m) * k):  # blocks of k, the last maybe not:
        out = np.empty(values.shape[:axis] + (m,) + values.shape[axis + 1:], np.float32)
        head = [slice(None)] * values.ndim
        body = (m - 1) * k  # a reshape, much faster than reduceat
        head[axis] = slice(0, body)
        shape = values.shape[:axis] + (m - 1, k) + values.shape[axis + 1:]
        out[tuple(head[:axis]) + (slice(0, m - 1),)] = (
            values[tuple(head)].reshape(shape).sum(axis=axis + 1, dtype=np.float32) / k)
        head[axis] = slice(body, None)
        out[tuple(head[:axis]) + (slice(m - 1, m),)] = (
            values[tuple(head)].sum(axis=axis, keepdims=True, dtype=np.float32)
            / np.float32(counts[-1]))
        return out
    sums = np.add.reduceat(values, starts, axis=axis, dtype=np.float32)
    shape = [1] * values.ndim
    shape[axis] = m
    return sums / counts.reshape(shape).astype(np.float32)


def _shrink_planes_into(planes: list[np.ndarray], dest: np.ndarray) -> None:
    """The mean of (H, W, C) uint8 planes shrunk by area means to dest's (h, w, C), written
    rounded into dest in bands of rows: float temporaries stay a few million values."""
    h, w = dest.shape[:2]
    rows, row_n = _axis_boxes(planes[0].shape[0], h)
    cols, col_n = _axis_boxes(planes[0].shape[1], w)
    step = max(1, (1 << 22) // max(1, planes[0].shape[1] * int(row_n.max())))
    for o0 in range(0, h, step):
        o1 = min(h, o0 + step)
        s0, s1 = int(rows[o0]), int(rows[o1 - 1] + row_n[o1 - 1])
        acc = None
        for plane in planes:
            band = _shrink_axis(plane[s0:s1], 0, rows[o0:o1] - s0, row_n[o0:o1])
            band = _shrink_axis(band, 1, cols, col_n)
            acc = band if acc is None else acc + band
        if len(planes) > 1:
            acc /= np.float32(len(planes))
        dest[o0:o1] = np.clip(np.rint(acc), 0, 255)


def build_pyramid(full: np.ndarray, shapes: Any, rgb: bool
                  ) -> Iterator[list[np.ndarray] | None]:
    """The lower levels of a colour result: each of the source's level shapes (+ 3
    channels) made from the level above by area means (2 x 2 for a halving; leading axes
    that shrink are averaged too). Yields None after each plane made, then the list of
    levels, `full` first."""
    out = [full]
    for shape in list(shapes)[1:]:
        lead, (h, w) = plane_shape(tuple(int(v) for v in shape), rgb)
        prev = out[-1]
        level = np.empty(lead + (h, w, 3), np.uint8)
        boxes = [_axis_boxes(n, m) for n, m in zip(prev.shape[:-3], lead)]
        for index in (np.ndindex(*lead) if lead else [()]):
            ranges = [range(int(b[0][j]), int(b[0][j] + b[1][j])) for b, j in zip(boxes, index)]
            sources = [prev[tuple(r[k] for r, k in zip(ranges, src))]
                       for src in (np.ndindex(*[len(r) for r in ranges]) if ranges else [()])]
            _shrink_planes_into(sources, level[index])
            yield None
        out.append(level)
    yield out


def with_pyramid(level0_steps: Iterator[tuple[int, int, Any]], shapes: Any, rgb: bool
                 ) -> Iterator[tuple[int, int, Any]]:
    """Run a level-0 colorization (`colorize_stack`-like steps), then `build_pyramid`:
    yields (done, total, None) throughout, then (total, total, [levels])."""
    extra = _pyramid_steps([tuple(s) for s in shapes], rgb)
    full = None
    for done, total, result in level0_steps:
        if result is not None:
            full = result
            break
        yield done, total + extra, None
    if full is None:
        return
    done, total = total, total + extra
    for levels in build_pyramid(full, shapes, rgb):
        if levels is not None:
            yield total, total, levels
            return
        done += 1
        yield done, total, None


def colorize_multiscale(levels: Any, colorizer: Any, *, rgb: bool, reference: Any = None,
                        hints: Any = None, unhinted: Any = None
                        ) -> Iterator[tuple[int, int, list[np.ndarray] | None]]:
    """Colorize a multiscale layer (levels from full resolution down; numpy, dask or zarr
    arrays): its full-resolution level plane by plane, large planes in tiles (never a
    level, or a large plane, read whole), then the lower levels made from the colour
    result with the source's level shapes. Yields like `colorize_stack`, one step per
    plane or tile (see `multiscale_steps`), then (total, total, [level arrays])."""
    levels = [levels[i] for i in range(len(levels))]
    shapes = [tuple(int(v) for v in level.shape) for level in levels]
    return with_pyramid(_colorize_level0(levels[0], colorizer, rgb=rgb, reference=reference,
                                         hints=hints, unhinted=unhinted), shapes, rgb)
