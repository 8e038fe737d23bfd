"""Colour hints as users give them -> (a*b* per pixel, mask of hinted pixels).

Accepted forms (the image size must equal the target's):
- a list of points ``[(x, y, colour), (x, y, colour, radius), ...]``; colour as an RGB
  tuple (0..255 ints or 0..1 floats) or ``"#rrggbb"``; radius in pixels (default 1.5);
- an RGBA image (H, W, 4): pixels with alpha > 0 are hints (a strokes layer);
- an RGB image (H, W, 3): coloured pixels (chroma above 3 in Lab) are hints, as in
  Levin et al.'s marked images; gray pixels are not;
- ``{"image": rgb, "mask": bool (H, W)}``: explicit mask (gray hints possible).
"""
from __future__ import annotations

from typing import Any

import numpy as np

import colorplug
from colorplug import color
from colorplug.image import intensity_to_unit, to_array

CHROMA_THRESHOLD = 3.0


def _parse_colour(c: Any) -> np.ndarray:
    if isinstance(c, str):
        s = c.lstrip("#")
        if len(s) != 6:
            raise colorplug.InputError(f"hint colour {c!r}: use '#rrggbb'")
        return np.array([int(s[i:i + 2], 16) for i in (0, 2, 4)], np.float64) / 255.0
    arr = np.asarray(c, dtype=np.float64).ravel()[:3]
    if arr.size != 3:
        raise colorplug.InputError(f"hint colour {c!r}: give 3 RGB values")
    return arr / 255.0 if arr.max() > 1.0 else arr


def _points(points: list, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    ab = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), bool)
    yy, xx = np.mgrid[0:h, 0:w]
    for p in points:
        if len(p) not in (3, 4):
            raise colorplug.InputError(f"hint point {p!r}: use (x, y, colour[, radius])")
        x, y, c = p[:3]
        r = float(p[3]) if len(p) == 4 else 1.5
        if not (0 <= x < w and 0 <= y < h):
            raise colorplug.InputError(f"hint point ({x}, {y}) lies outside the {w}x{h} image")
        disc = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
        disc[int(round(min(y, h - 1))), int(round(min(x, w - 1)))] = True
        ab[disc] = color.rgb_to_lab(_parse_colour(c))[1:]
        mask |= disc
    return ab, mask


def parse_hints(hints: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Hints in any accepted form -> (ab float32 (H, W, 2), mask bool (H, W))."""
    if hints is None:
        raise colorplug.InputError("the scribble backend needs colour hints: pass hints= "
                                   "(points, an RGBA strokes image or a marked RGB image; "
                                   "CLI: --hints FILE)")
    if isinstance(hints, (list, tuple)) and (len(hints) == 0 or isinstance(hints[0], (list, tuple))):
        ab, mask = _points(list(hints), shape)
    else:
        explicit = None
        if isinstance(hints, dict):
            explicit = np.asarray(hints["mask"], bool)
            hints = hints["image"]
        arr = to_array(hints, what="hints image")
        if arr.ndim != 3:
            raise colorplug.InputError("the hints image must be RGB or RGBA (colours to "
                                       f"spread), not shape {arr.shape}")
        if arr.shape[:2] != tuple(shape):
            raise colorplug.InputError(f"the hints image is {arr.shape[1]}x{arr.shape[0]} but "
                                       f"the image is {shape[1]}x{shape[0]}; they must match")
        unit = intensity_to_unit(arr, "dtype")
        lab = color.rgb_to_lab(unit[..., :3])
        ab = lab[..., 1:].astype(np.float32)
        if explicit is not None:
            mask = explicit
        elif arr.shape[-1] == 4:
            mask = unit[..., 3] > 0
        else:
            mask = np.hypot(ab[..., 0], ab[..., 1]) > CHROMA_THRESHOLD
    if not mask.any():
        raise colorplug.InputError("the hints contain no hinted pixel (no coloured or "
                                   "opaque pixel, no point)")
    return ab, mask
