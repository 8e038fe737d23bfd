"""Optical flow for propagation and metrics: OpenCV's DIS on gray frames, backward warping,
and forward-backward consistency (occlusions)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ._cv import cv2


def to_gray8(lightness: np.ndarray) -> np.ndarray:
    """L* in [0, 100] -> uint8 gray for the flow estimator."""
    return np.clip(np.rint(lightness * 2.55), 0, 255).astype(np.uint8)


def resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a map (H, W[, C]): area average when shrinking, bilinear when enlarging."""
    if arr.shape[1] == width and arr.shape[0] == height:
        return arr
    shrink = width <= arr.shape[1] and height <= arr.shape[0]
    return cv2().resize(arr, (width, height),
                        interpolation=cv2().INTER_AREA if shrink else cv2().INTER_LINEAR)


def work_shape(height: int, width: int, side: int) -> tuple[int, int]:
    """(h, w) with the longest side at most `side` (never enlarged), aspect kept."""
    scale = min(1.0, side / max(height, width))
    return max(8, int(round(height * scale))), max(8, int(round(width * scale)))


class Flow:
    """Dense flow between two uint8 gray frames (DIS, Kroeger et al. 2016)."""

    def __init__(self, preset: str = "fast") -> None:
        cv = cv2()
        presets = {"ultrafast": cv.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                   "fast": cv.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self._dis: Any = cv.DISOpticalFlow_create(presets[preset])

    def __call__(self, frame: np.ndarray, other: np.ndarray) -> np.ndarray:
        """flow (H, W, 2) with ``frame(x) ~ other(x + flow(x))``; zero for frames under
        16 pixels a side (too small for DIS's patches)."""
        if min(frame.shape[:2]) < 16:
            return np.zeros(frame.shape[:2] + (2,), np.float32)
        return self._dis.calc(frame, other, None)


def sample_at(arr: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``arr(x + flow(x))`` (bilinear, float32) and a mask of positions inside the frame."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    warped = cv2().remap(np.ascontiguousarray(arr, dtype=np.float32), mx, my,
                         interpolation=cv2().INTER_LINEAR, borderMode=cv2().BORDER_REPLICATE)
    return warped, inside


def backward_pair(flow_fn: Flow, current: np.ndarray, previous: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flow b: current->previous, the forward flow f: previous->current sampled at x + b,
    and the mask of x whose x + b lies inside the frame."""
    back = flow_fn(current, previous)
    fwd_at, inside = sample_at(flow_fn(previous, current), back)
    return back, fwd_at, inside


def mismatch(back: np.ndarray, fwd_at: np.ndarray) -> np.ndarray:
    """Squared forward-backward inconsistency |b + f(x + b)|^2 in pixels^2 (0: consistent)."""
    return ((back + fwd_at) ** 2).sum(-1)


def non_occluded(back: np.ndarray, fwd_at: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Ruder et al. (2016) forward-backward test, as used by Lai et al. (2018):
    visible where |b + f|^2 <= 0.01 (|b|^2 + |f|^2) + 0.5."""
    bound = 0.01 * ((back ** 2).sum(-1) + (fwd_at ** 2).sum(-1)) + 0.5
    return inside & (mismatch(back, fwd_at) <= bound)
