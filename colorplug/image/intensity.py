"""Intensities -> lightness: what every backend receives.

Intensity -> lightness (single-channel data):
- ``intensity_range=(lo, hi)``: lo maps to black, hi to white, linearly, clipped.
- ``"dtype"``: the full range of the dtype (uint8 0..255, uint16 0..65535, float 0..1).
- ``"percentile"``: the 0.5th and 99.5th percentiles (robust to hot pixels).
- ``None`` (default): uint8 -> "dtype"; float data inside [0, 1] -> "dtype"; uint16 and
  float data outside [0, 1] -> "percentile", as scientific data rarely fills its range.
The mapped value is a displayed gray level (sRGB encoded), so what the user sees as gray is
what gets colorized and the output has that gray's lightness.
Colour inputs: lightness is the L* of the colour (their chroma is discarded).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import color
from ..errors import GrayscaleReferenceError, InputError
from .coerce import check_dtype, dtype_max, to_array

PERCENTILES = (0.5, 99.5)
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Prepared:
    """An input reduced to what every backend needs: full-resolution L* and alpha."""

    lightness: np.ndarray  # float32 (H, W) in [0, 100]
    alpha: np.ndarray | None  # float32 (H, W) in [0, 1], or None
    is_color: bool


#: Pixels converted at a time: full-size float temporaries never exist for large images.
STRIP_PIXELS = 1 << 20


def in_strips(arr: np.ndarray, fn: Any) -> np.ndarray:
    """``fn`` applied to row strips of `arr` (about STRIP_PIXELS each) -> float32 (H, W)."""
    h, w = arr.shape[:2]
    out = np.empty((h, w), np.float32)
    step = max(1, STRIP_PIXELS // max(w, 1))
    for r0 in range(0, h, step):
        out[r0:r0 + step] = fn(arr[r0:r0 + step])
    return out


def display_range(arr: np.ndarray, intensity_range: Any) -> tuple[float, float]:
    """The (lo, hi) that map to black and white for `arr` under the module's rules."""
    return _range(arr, intensity_range)


def _as_range_value(intensity_range: Any) -> Any:
    """A (lo, hi) given as a numpy array -> a tuple; anything else unchanged."""
    if isinstance(intensity_range, np.ndarray):
        if intensity_range.size != 2:
            raise InputError(f"intensity_range must be None, 'dtype', 'percentile' or (lo, hi); "
                             f"got an array of shape {intensity_range.shape}")
        return tuple(intensity_range.ravel().tolist())
    return intensity_range


def _range(arr: np.ndarray, intensity_range: Any) -> tuple[float, float]:
    mode = _as_range_value(intensity_range)
    if mode is None:
        if arr.dtype == np.uint8 or arr.ndim == 3:
            mode = "dtype"
        elif arr.dtype.kind == "f" and float(arr.min()) >= 0.0 and float(arr.max()) <= 1.0:
            mode = "dtype"
        else:
            mode = "percentile"
    if isinstance(mode, str) and mode == "dtype":
        return 0.0, dtype_max(arr)
    if isinstance(mode, str) and mode == "percentile":
        lo, hi = (float(v) for v in np.percentile(arr, PERCENTILES))
        if not hi > lo:  # constant image: fall back to the dtype range
            lo, hi = 0.0, max(dtype_max(arr), hi)
        return lo, hi
    if isinstance(mode, (tuple, list)) and len(mode) == 2:
        try:
            lo, hi = float(mode[0]), float(mode[1])
        except (TypeError, ValueError):
            raise InputError(f"intensity_range {tuple(mode)!r} must be two numbers (lo, hi)"
                             ) from None
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            raise InputError(f"intensity_range {tuple(mode)} must be finite with lo < hi")
        with np.errstate(over="ignore", divide="ignore"):
            scale = np.float32(1.0) / np.float32(hi - lo)
        if not np.isfinite(scale):  # float32 arithmetic cannot map so narrow a range
            raise InputError(f"intensity_range {tuple(mode)} is too narrow (hi - lo = "
                             f"{hi - lo:g}); give the range of the image's values")
        return lo, hi
    raise InputError(f"intensity_range must be None, 'dtype', 'percentile' or (lo, hi); "
                     f"got {mode!r}")


def intensity_to_unit(arr: np.ndarray, intensity_range: Any = None) -> np.ndarray:
    """Map raw intensities to [0, 1] display values (float32) following the module rules.

    The arithmetic runs in float32 when the data and the range fit it, else in float64, so
    finite inputs beyond float32 (1e39, a range of 1e300) never overflow to inf or NaN.
    """
    return unit_from_range(arr, *_range(arr, intensity_range))


def unit_from_range(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map of `arr` from [lo, hi] to [0, 1], clipped, float32 (see
    `intensity_to_unit` for the float64 fallback)."""
    if arr.dtype == np.uint8 and (lo, hi) == (0.0, 255.0):
        return arr.astype(np.float32) / np.float32(255.0)
    fits32 = (max(abs(lo), abs(hi), hi - lo) <= _F32_MAX / 4
              and (arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2
                   or arr.dtype in (np.float16, np.float32)
                   or float(np.abs(arr).max()) <= _F32_MAX / 4))
    if fits32:
        out = (arr.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
    else:  # halved so that hi - lo cannot overflow even for ranges near float64's limit
        half = arr.astype(np.float64) / 2
        out = (half - lo / 2) / (hi / 2 - lo / 2)
    np.clip(out, 0.0, 1.0, out=out)
    return out.astype(np.float32, copy=False)


_GRAY8_L = color.lightness_from_gray(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def prepare(image: Any, *, intensity_range: Any = None, what: str = "image") -> Prepared:
    """Validate an input and reduce it to full-resolution lightness (+ alpha)."""
    intensity_range = _as_range_value(intensity_range)
    arr = to_array(image, what=what)
    check_dtype(arr, intensity_range, what)
    alpha = None
    if arr.ndim == 3 and arr.shape[-1] == 4:
        top = dtype_max(arr)
        alpha = in_strips(arr[..., 3], lambda s: unit_from_range(s, 0.0, top))
        arr = arr[..., :3]
    if arr.ndim == 2:
        if arr.dtype == np.uint8 and intensity_range in (None, "dtype"):
            return Prepared(_GRAY8_L[arr], alpha, False)  # exact and fast: a 256-entry table
        lo, hi = _range(arr, intensity_range)
        lightness = in_strips(arr, lambda s: color.lightness_from_gray(unit_from_range(s, lo, hi)))
        return Prepared(lightness, alpha, False)
    lo, hi = _range(arr, "dtype" if intensity_range is None else intensity_range)
    lightness = in_strips(arr, lambda s: color.lightness_from_rgb(unit_from_range(s, lo, hi)))
    sample = unit_from_range(arr.reshape(-1, 3)[:: max(1, arr.size // 300000)], lo, hi)
    is_color = bool(np.ptp(sample, axis=1).max() > 1e-6)
    return Prepared(lightness, alpha, is_color)


def prepare_reference(reference: Any, *, require_color: bool = True) -> np.ndarray:
    """A colour reference image -> Lab float32 (H, W, 3); a gray reference is an error."""
    arr = to_array(reference, what="reference")
    check_dtype(arr, None, "reference")
    if arr.ndim == 2:
        if require_color:
            raise GrayscaleReferenceError("the reference image is grayscale; a colour (RGB) "
                                          "reference is needed to take colours from")
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.dtype.kind == "f" and arr.size:
        low, high = float(np.nanmin(arr[..., :3])), float(np.nanmax(arr[..., :3]))
        if low < -1e-3 or high > 1 + 1e-3:
            raise InputError(f"the reference is a float image with values from {low:g} to "
                             f"{high:g}; float colour images hold values in [0, 1]: divide "
                             "it by 255 (or by 65535), or pass it as uint8 / uint16")
    lo, hi = _range(arr, "dtype")
    lab = np.empty(arr.shape[:2] + (3,), np.float32)
    step = max(1, STRIP_PIXELS // max(arr.shape[1], 1))
    chroma = 0.0
    for r0 in range(0, arr.shape[0], step):  # in strips, as `prepare`
        lab[r0:r0 + step] = color.rgb_to_lab(unit_from_range(arr[r0:r0 + step, :, :3], lo, hi))
        chroma = max(chroma, float(np.abs(lab[r0:r0 + step, :, 1:]).max()))
    if require_color and chroma < 1.0:
        raise GrayscaleReferenceError("the reference image has no colour (all pixels are "
                                      "gray); a colour reference is needed to take colours "
                                      "from")
    return lab
