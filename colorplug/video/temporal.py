"""Temporal coherence: shot-cut detection and flow propagation of chroma.

`FlowPropagator` warps the previous *output*'s a*b* onto the current frame (DIS flow on the
gray frames, at a reduced working size) and blends it with the backend's prediction by a
per-pixel confidence: forward-backward flow consistency times lightness agreement. The
blend is a correction computed at the working size and added to the full-resolution
prediction, so the current frame's own L* and chroma detail are kept. `ShotDetector`
resets it at cuts (lightness histogram distance), so a new shot never inherits the colours
of the last one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import flow as fl

#: Working size (longest side) of flow and cut detection.
WORK_SIDE = 320
#: Histogram distance (total variation of 32-bin L* histograms, in [0, 1]) above which two
#: consecutive frames are a cut: the geometric middle of the gap between the largest
#: within-shot distance (0.023) and the smallest cut (0.30) on val clips (video.py tune).
CUT_THRESHOLD = 0.08


def lightness_histogram(lightness: np.ndarray, bins: int = 32) -> np.ndarray:
    """Normalised histogram of L* in [0, 100]."""
    hist, _ = np.histogram(lightness, bins=bins, range=(0.0, 100.0))
    return hist / max(1, hist.sum())


class ShotDetector:
    """Flags the first frame of each shot: the first frame, a change of size, or a jump of
    the lightness histogram (total variation distance > `threshold`)."""

    def __init__(self, threshold: float = CUT_THRESHOLD, side: int = WORK_SIDE) -> None:
        self.threshold = threshold
        self.side = side
        self._last: tuple[tuple[int, int], np.ndarray] | None = None
        self.last_distance = float("nan")

    def __call__(self, lightness: np.ndarray) -> bool:
        """True when `lightness` (H, W) starts a new shot."""
        h, w = fl.work_shape(*lightness.shape, self.side)
        hist = lightness_histogram(fl.resize(lightness.astype(np.float32), w, h))
        last, self._last = self._last, (lightness.shape, hist)
        if last is None or last[0] != lightness.shape:
            self.last_distance = float("nan")
            return True
        self.last_distance = 0.5 * float(np.abs(hist - last[1]).sum())
        return self.last_distance > self.threshold


@dataclass
class FlowSettings:
    """How strongly and where the previous output is trusted."""

    strength: float = 0.9   # weight of the warped previous output where fully confident
    sigma_fb: float = 1.0   # forward-backward mismatch (working-size pixels) at e^-1/2
    sigma_l: float = 6.0    # L* difference after warping at e^-1/2
    side: int = WORK_SIDE
    preset: str = "fast"


#: The settings `FlowPropagator` uses when given none (benchmarks/video.py tune swaps it).
DEFAULT_SETTINGS = FlowSettings()


class FlowPropagator:
    """Per-frame chroma stabiliser: ``step(L, ab, cut)`` -> stabilised a*b* (H, W, 2)."""

    def __init__(self, settings: FlowSettings | None = None) -> None:
        self.settings = settings or DEFAULT_SETTINGS
        self._flow = fl.Flow(self.settings.preset)
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # gray8, L, ab
        self.last_confidence: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the previous frame (a new shot)."""
        self._prev = None

    def step(self, lightness: np.ndarray, ab: np.ndarray, cut: bool = False) -> np.ndarray:
        """Blend the backend's a*b* (H, W, 2) for this frame with the previous output
        warped here; `cut`: this frame starts a shot (nothing is carried over)."""
        s = self.settings
        h, w = fl.work_shape(*lightness.shape, s.side)
        small_l = fl.resize(lightness.astype(np.float32), w, h)
        small_ab = fl.resize(ab.astype(np.float32), w, h)
        gray = fl.to_gray8(small_l)
        prev = self._prev
        if cut or prev is None or prev[0].shape != gray.shape:
            self._prev = (gray, small_l, small_ab)
            self.last_confidence = np.zeros((h, w), np.float32)
            return ab
        back, fwd_at, inside = fl.backward_pair(self._flow, gray, prev[0])
        warped_l, _ = fl.sample_at(prev[1], back)
        warped_ab, _ = fl.sample_at(prev[2], back)
        confidence = (np.exp(-fl.mismatch(back, fwd_at) / (2 * s.sigma_fb ** 2))
                      * np.exp(-(small_l - warped_l) ** 2 / (2 * s.sigma_l ** 2)) * inside)
        weight = (s.strength * confidence).astype(np.float32)
        delta = weight[..., None] * (warped_ab - small_ab)
        self._prev = (gray, small_l, small_ab + delta)
        self.last_confidence = confidence.astype(np.float32)
        full = fl.resize(delta, lightness.shape[1], lightness.shape[0])
        return ab + full
