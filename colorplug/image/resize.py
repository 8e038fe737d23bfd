"""Sizes and resizing at a backend's working size."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .intensity import STRIP_PIXELS

#: The largest working size a backend accepts: the network's activations at 8192^2 already
#: take tens of GB; beyond it a typo (100000) would only end in an out-of-memory error.
MAX_WORKING_SIZE = 8192


def check_working_size(value: object, *, minimum: int, multiple: int = 1) -> int:
    """`value` as a working size: an int from `minimum` to `MAX_WORKING_SIZE`, a multiple
    of `multiple`; an InputError naming the option otherwise."""
    ok = isinstance(value, int) and not isinstance(value, bool) and \
        minimum <= value <= MAX_WORKING_SIZE and value % multiple == 0
    if not ok:
        step = f"a multiple of {multiple}, " if multiple > 1 else "an integer "
        raise InputError(f"working_size must be {step}from {minimum} to {MAX_WORKING_SIZE}; "
                         f"got {value!r}")
    return value  # type: ignore[return-value]


def working_shape(height: int, width: int, size: int, *, multiple: int = 1) -> tuple[int, int]:
    """(h, w) of an image brought to a backend's working size: longest side about `size`,
    aspect kept, each side rounded to a multiple of `multiple` (at least one multiple)."""
    scale = size / max(height, width)
    return (max(multiple, int(round(height * scale / multiple)) * multiple),
            max(multiple, int(round(width * scale / multiple)) * multiple))


def _pil_resize(values: np.ndarray, width: int, height: int, resample: int) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), resample=resample), dtype=np.float32)


def resize_map(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an (H, W) float map (lightness) to a backend's working size: area average
    when shrinking, bilinear when enlarging (a 1x1 input becomes a flat map).

    Pillow resizes in two separable passes; for large maps the horizontal one runs over row
    strips and the vertical one over the narrow result, which gives the same values without
    a full-size float copy of the map.
    """
    from PIL import Image

    h, w = values.shape
    resample = Image.BOX if (w >= width and h >= height) else Image.BILINEAR
    if h * w <= STRIP_PIXELS or width == w:
        return _pil_resize(values, width, height, resample)
    step = max(1, STRIP_PIXELS // w)
    across = np.empty((h, width), np.float32)
    for r0 in range(0, h, step):
        strip = values[r0:r0 + step]
        across[r0:r0 + step] = _pil_resize(strip, width, strip.shape[0], resample)
    return _pil_resize(across, width, height, resample)
