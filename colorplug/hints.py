"""Colour hints as users give them -> (a*b* per pixel, mask of hinted pixels), for every
backend that takes hints (colorplug-classic's scribble, colorplug-zoo's siggraph17, ...).

Accepted forms (the hints' size must equal the image's):
- points ``[(x, y, colour), (x, y, colour, radius), ...]``: colour an RGB tuple (0..255 or
  0..1) or ``"#rrggbb"``, radius in pixels (default 1.5) — napari Points give these;
- an RGBA image: pixels with alpha > 0 are hints (a strokes layer; GIMP's hints layer);
- an RGB image: coloured pixels (chroma above 3 in Lab) are hints, as in Levin et al.'s
  marked images; gray pixels are not;
- ``{"image": rgb, "mask": bool (H, W)}``: an explicit mask (gray hints possible).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import color
from .errors import InputError
from .image import intensity_to_unit, to_array

CHROMA_THRESHOLD = 3.0


def _colour_ab(c: Any) -> np.ndarray:
    if isinstance(c, str):
        s = c.lstrip("#")
        if len(s) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in s):
            raise InputError(f"hint colour {c!r}: use '#rrggbb'")
        rgb = np.array([int(s[i:i + 2], 16) for i in (0, 2, 4)], np.float64) / 255.0
    else:
        rgb = np.asarray(c, dtype=np.float64).ravel()
        if rgb.size < 3 or not np.isfinite(rgb[:3]).all():
            raise InputError(f"hint colour {c!r}: give 3 RGB values")
        rgb = rgb[:3] / 255.0 if rgb[:3].max() > 1.0 else rgb[:3]
    return color.rgb_to_lab(np.clip(rgb, 0, 1))[1:]


def hint_maps(hints: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Hints -> (a*b* (H, W, 2) float32, mask (H, W) bool) at the image's resolution."""
    h, w = shape
    if isinstance(hints, (list, tuple)) and (not hints or isinstance(hints[0], (list, tuple))):
        ab = np.zeros((h, w, 2), np.float32)
        mask = np.zeros((h, w), bool)
        for p in hints:
            if len(p) not in (3, 4):
                raise InputError(f"hint point {p!r}: use (x, y, colour[, radius])")
            x, y, c = p[:3]
            r = float(p[3]) if len(p) == 4 else 1.5
            if not (0 <= x < w and 0 <= y < h):
                raise InputError(f"hint point ({x}, {y}) lies outside the {w}x{h} image")
            y0, y1 = int(max(0, np.floor(y - r))), int(min(h, np.ceil(y + r) + 1))
            x0, x1 = int(max(0, np.floor(x - r))), int(min(w, np.ceil(x + r) + 1))
            yy, xx = np.mgrid[y0:y1, x0:x1]
            disc = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
            disc[int(min(y, h - 1)) - y0, int(min(x, w - 1)) - x0] = True
            ab[y0:y1, x0:x1][disc] = _colour_ab(c)
            mask[y0:y1, x0:x1] |= disc
    else:
        explicit = None
        if isinstance(hints, dict):
            if "image" not in hints or "mask" not in hints:
                raise InputError("hints as a dict need 'image' and 'mask'")
            explicit = np.asarray(hints["mask"], bool)
            hints = hints["image"]
        arr = to_array(hints, what="hints image")
        if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
            raise InputError("the hints image must be RGB or RGBA, not shape "
                                       f"{arr.shape}")
        if arr.shape[:2] != (h, w):
            raise InputError(f"the hints image is {arr.shape[1]}x{arr.shape[0]} but "
                                       f"the image is {w}x{h}; they must match")
        unit = intensity_to_unit(arr, "dtype")
        ab = color.rgb_to_lab(unit[..., :3])[..., 1:].astype(np.float32)
        if explicit is not None:
            if explicit.shape != (h, w):
                raise InputError(f"the hints mask has shape {explicit.shape}, the "
                                           f"image {(h, w)}; they must match")
            mask = explicit
        elif arr.shape[-1] == 4:
            mask = unit[..., 3] > 0
        else:
            mask = np.hypot(ab[..., 0], ab[..., 1]) > CHROMA_THRESHOLD
    if not mask.any():
        raise InputError("the hints contain no hinted pixel (no coloured or opaque "
                                   "pixel, no point)")
    return ab, mask
