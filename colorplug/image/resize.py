"""Sizes and resizing at a backend's working size."""
from __future__ import annotations

import numpy as np


def working_shape(height: int, width: int, size: int, *, multiple: int = 1) -> tuple[int, int]:
    """(h, w) of an image brought to a backend's working size: longest side about `size`,
    aspect kept, each side rounded to a multiple of `multiple` (at least one multiple)."""
    scale = size / max(height, width)
    return (max(multiple, int(round(height * scale / multiple)) * multiple),
            max(multiple, int(round(width * scale / multiple)) * multiple))


def resize_map(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an (H, W) float map (lightness) to a backend's working size: area average
    when shrinking, bilinear when enlarging (a 1x1 input becomes a flat map)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")
    h, w = values.shape
    resample = Image.BOX if (w >= width and h >= height) else Image.BILINEAR
    return np.asarray(img.resize((width, height), resample=resample), dtype=np.float32)
