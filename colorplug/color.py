"""CIE Lab (D65, 2 degree observer) <-> sRGB, in numpy and differentiable torch.

The formulas and constants follow `skimage.color` so results agree with it to 1e-3.
sRGB values are in [0, 1]; L* in [0, 100]; a*, b* roughly in [-128, 127].
Lab -> sRGB results outside the sRGB gamut are clipped to [0, 1] by `lab_to_rgb`, which
changes L* of saturated colours; `lab_to_rgb_in_gamut` (what the colorize pipeline uses)
reduces chroma instead and keeps L*. See docs/color.md.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: Linear sRGB -> XYZ (rows X, Y, Z), as in skimage.color.
XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                         [0.212671, 0.715160, 0.072169],
                         [0.019334, 0.119193, 0.950227]])
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_EPS = 0.008856  # (6/29)^3, as rounded by skimage
_KAPPA = 7.787


# ----------------------------------------------------------------------------- numpy
def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Undo the sRGB transfer curve."""
    x = np.asarray(x, dtype=np.float64 if np.asarray(x).dtype == np.float64 else np.float32)
    return np.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Apply the sRGB transfer curve (negative input is treated as 0)."""
    x = np.maximum(x, 0)
    return np.where(x > 0.0031308, 1.055 * np.power(x, 1 / 2.4) - 0.055, 12.92 * x)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(t), _KAPPA * t + 16.0 / 116.0)


def _finv(t: np.ndarray) -> np.ndarray:
    return np.where(t > 0.2068966, t ** 3, (t - 16.0 / 116.0) / _KAPPA)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) in [0, 1] -> Lab (..., 3). float32 unless the input is float64."""
    rgb = np.asarray(rgb)
    dtype = np.float64 if rgb.dtype == np.float64 else np.float32
    lin = srgb_to_linear(rgb.astype(dtype, copy=False))
    xyz = lin @ XYZ_FROM_RGB.T.astype(dtype)
    fx, fy, fz = (_f(xyz[..., i] / dtype(WHITE_D65[i])) for i in range(3))
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)],
                    axis=-1).astype(dtype, copy=False)


def lab_to_linear(lab: np.ndarray, clamp_z: bool = True) -> np.ndarray:
    """Lab (..., 3) -> linear sRGB, not clipped (values outside [0, 1] are out of gamut)."""
    lab = np.asarray(lab)
    dtype = np.float64 if lab.dtype == np.float64 else np.float32
    lab = lab.astype(dtype, copy=False)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    if clamp_z:
        fz = np.maximum(fz, 0)  # skimage clips negative z the same way
    xyz = np.stack([_finv(fx) * WHITE_D65[0], _finv(fy) * WHITE_D65[1],
                    _finv(fz) * WHITE_D65[2]], axis=-1).astype(dtype, copy=False)
    return xyz @ RGB_FROM_XYZ.T.astype(dtype)


def lab_to_rgb(lab: np.ndarray, clip: bool = True) -> np.ndarray:
    """Lab (..., 3) -> sRGB (..., 3); out-of-gamut values clipped to [0, 1] if `clip`."""
    rgb = linear_to_srgb(lab_to_linear(lab))
    return np.clip(rgb, 0, 1) if clip else rgb


def lab_to_rgb_in_gamut(lab: np.ndarray) -> np.ndarray:
    """Lab -> sRGB keeping L*: out-of-gamut colours are desaturated, not clipped.

    Per-channel clipping (`lab_to_rgb`) shifts the lightness of saturated colours (by
    several L* units for a saturated red at L* 30). Here each out-of-gamut colour is mixed
    in linear light with the neutral gray of the same luminance Y, just enough to fit:
    Y (hence L*) is unchanged exactly and the colour moves on a straight line towards the
    white point in chromaticity, which keeps its dominant wavelength (hue, closely).
    """
    lin = lab_to_linear(lab, clamp_z=False)
    y = lin @ XYZ_FROM_RGB[1].astype(lin.dtype)
    y = np.clip(y, 0, 1)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(lin > 1, (1 - y) / (lin - y), 1.0)
        under = np.where(lin < 0, y / (y - lin), 1.0)
    t = np.clip(np.minimum(over, under).min(axis=-1, keepdims=True), 0, 1)
    t = np.nan_to_num(t, nan=0.0)
    lin = y + t * (lin - y)
    return np.clip(linear_to_srgb(np.clip(lin, 0, 1)), 0, 1)


def lab_to_linear_in_gamut(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L*, a*, b* planes -> linear sRGB (3, ...) float32 in [0, 1], gamut-mapped as
    `lab_to_rgb_in_gamut` does (chroma reduced towards the gray of the same Y, L* kept).

    The fast path of the colorize pipeline: float32 planes, Y taken straight from L*, and
    the gamut mapping computed only for the pixels outside the sRGB gamut.
    """
    f32 = np.float32
    fy = (np.asarray(lightness, f32) + f32(16.0)) / f32(116.0)
    fx = fy + np.asarray(a, f32) / f32(500.0)
    fz = fy - np.asarray(b, f32) / f32(200.0)

    def finv(t: np.ndarray) -> np.ndarray:
        return np.where(t > f32(0.2068966), t * t * t, (t - f32(16.0 / 116.0)) / f32(_KAPPA))

    y = np.clip(finv(fy) * f32(WHITE_D65[1]), 0, 1)
    x, z = finv(fx) * f32(WHITE_D65[0]), finv(fz) * f32(WHITE_D65[2])
    m = RGB_FROM_XYZ.astype(f32)
    lin = np.empty((3,) + y.shape, f32)
    for c in range(3):
        np.multiply(x, m[c, 0], out=lin[c])
        lin[c] += m[c, 1] * y
        lin[c] += m[c, 2] * z
    low, high = lin.min(axis=0), lin.max(axis=0)
    outside = np.flatnonzero((low < 0) | (high > 1))
    if outside.size:  # mix with gray of the same Y, just enough to fit (see lab_to_rgb_in_gamut)
        flat = lin.reshape(3, -1)
        yo, lo, hi = y.reshape(-1)[outside], low.reshape(-1)[outside], high.reshape(-1)[outside]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.minimum(np.where(hi > 1, (1 - yo) / (hi - yo), f32(1)),
                           np.where(lo < 0, yo / (yo - lo), f32(1)))
        t = np.nan_to_num(np.clip(t, 0, 1), nan=0.0).astype(f32)
        sub = flat[:, outside]
        flat[:, outside] = yo + t * (sub - yo)
    return np.clip(lin, 0, 1, out=lin)


#: Entries of the linear -> 8-bit sRGB table: a step of 1/65535 in linear light moves the
#: encoded value by at most 12.92/65535 of full scale, 1/20 of an 8-bit step.
_SRGB8_STEPS = 1 << 16
_srgb8_table: np.ndarray | None = None


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear sRGB in [0, 1] -> 8-bit encoded sRGB, through a table instead of a power
    per value (within 1/255 of ``rint(255 * linear_to_srgb(x))``)."""
    global _srgb8_table
    if _srgb8_table is None:
        grid = np.arange(_SRGB8_STEPS, dtype=np.float64) / (_SRGB8_STEPS - 1)
        _srgb8_table = np.rint(255.0 * linear_to_srgb(grid)).astype(np.uint8)
    index = np.multiply(linear, np.float32(_SRGB8_STEPS - 1), dtype=np.float32)
    index += np.float32(0.5)
    np.clip(index, 0, _SRGB8_STEPS - 1, out=index)
    return _srgb8_table[index.astype(np.uint16)]


def lightness_from_gray(gray: np.ndarray) -> np.ndarray:
    """L* of a neutral sRGB gray value in [0, 1] (Y of R=G=B is the linear value itself)."""
    gray = np.asarray(gray)
    dtype = np.float64 if gray.dtype == np.float64 else np.float32
    return (116.0 * _f(srgb_to_linear(gray.astype(dtype, copy=False))) - 16.0).astype(dtype)


def lightness_from_rgb(rgb: np.ndarray) -> np.ndarray:
    """L* of sRGB colours (..., 3), computed from Y alone (cheaper than full Lab)."""
    rgb = np.asarray(rgb)
    dtype = np.float64 if rgb.dtype == np.float64 else np.float32
    y = srgb_to_linear(rgb.astype(dtype, copy=False)) @ XYZ_FROM_RGB[1].astype(dtype)
    return (116.0 * _f(y) - 16.0).astype(dtype)


def gray_from_lightness(lightness: np.ndarray) -> np.ndarray:
    """The neutral sRGB gray value in [0, 1] that has lightness L*."""
    y = _finv((np.asarray(lightness) + 16.0) / 116.0)
    return np.clip(linear_to_srgb(y), 0, 1)


# ----------------------------------------------------------------------------- torch
def _torch() -> Any:
    import torch

    return torch


def rgb_to_lab_torch(rgb: Any) -> Any:
    """Differentiable sRGB -> Lab for tensors shaped (..., 3, H, W) (channels first)."""
    torch = _torch()
    rgb = rgb.clamp(0, 1)
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(1e-8) ** 2.4, rgb / 12.92)
    m = torch.as_tensor(XYZ_FROM_RGB, dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
    white = torch.as_tensor(WHITE_D65, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    t = xyz / white
    f = torch.where(t > _EPS, t.clamp_min(_EPS) ** (1.0 / 3.0), _KAPPA * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb_torch(lab: Any, clip: bool = True) -> Any:
    """Differentiable Lab -> sRGB for tensors shaped (..., 3, H, W)."""
    torch = _torch()
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp_min(0)
    f = torch.stack([fx, fy, fz], dim=-3)
    t = torch.where(f > 0.2068966, f ** 3, (f - 16.0 / 116.0) / _KAPPA)
    white = torch.as_tensor(WHITE_D65, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    m = torch.as_tensor(RGB_FROM_XYZ, dtype=lab.dtype, device=lab.device)
    lin = torch.einsum("ij,...jhw->...ihw", m, t * white).clamp_min(0)
    rgb = torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(1e-8) ** (1 / 2.4) - 0.055,
                      12.92 * lin)
    return rgb.clamp(0, 1) if clip else rgb
