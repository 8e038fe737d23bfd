"""Output dtypes: float sRGB in [0, 1] -> what the user asked for."""
from __future__ import annotations

import numpy as np

from ..errors import InputError

OUTPUT_DTYPES = ("uint8", "uint16", "float32")


def finish(rgb: np.ndarray, alpha: np.ndarray | None, output_dtype: str) -> np.ndarray:
    """Float sRGB in [0, 1] (+ alpha) -> the requested output dtype, alpha appended."""
    if alpha is not None:
        rgb = np.concatenate([rgb, alpha[..., None].astype(rgb.dtype)], axis=-1)
    return convert_dtype(rgb, output_dtype)


def convert_dtype(unit: np.ndarray, output_dtype: str) -> np.ndarray:
    """[0, 1] floats -> uint8 / uint16 (rounded) or float32."""
    if output_dtype == "uint8":
        return np.rint(unit * 255.0).astype(np.uint8)
    if output_dtype == "uint16":
        return np.rint(unit * 65535.0).astype(np.uint16)
    if output_dtype == "float32":
        return unit.astype(np.float32, copy=False)
    raise InputError(f"output_dtype must be one of {', '.join(OUTPUT_DTYPES)}; "
                     f"got {output_dtype!r}")
