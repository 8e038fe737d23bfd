"""Flicker metrics of colorized video: warp error and colour distribution consistency.

- Warp error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018, eq. 9):
  E = 1/(T-1) sum_t  sum_i M_t(i) ||V_t(i) - warp(V_{t-1})(i)||^2 / sum_i M_t(i), with V in
  [0, 1] RGB, the previous output warped to frame t by optical flow computed on the guide
  frames (ground truth or gray input; DIS here, FlowNet2 in the paper), and M_t the
  non-occluded pixels by the forward-backward test of Ruder et al. (2016).
- CDC, colour distribution consistency (Liu et al., "Temporally Consistent Video
  Colorization with Deep Feature Propagation and Self-regularization Learning", 2021,
  arXiv:2110.04562, sec. 4): the Jensen-Shannon divergence of per-channel colour
  histograms of frames t and t+k, averaged over channels and t, for k = 1, 2, 4, then
  averaged over the three k. Here: 256-bin histograms, log base 2 (so each JS is in [0, 1]).

The chroma variants (``*_ab``) measure the same on CIE a*b* only (a*b* / 100 for the warp
error, 256 bins over [-128, 128] for CDC): the lightness is the input's own, so RGB metrics
are dominated by it and the a*b* ones show what a temporal mode changes. Pairs of frames
across a cut (``add(..., new_shot=True)``) are not compared.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Iterable

import numpy as np

from .. import color
from . import flow as fl

INTERVALS = (1, 2, 4)
BINS = 256


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (log base 2, in [0, 1]) of two histograms (any scale)."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    p, q = p / max(p.sum(), 1e-12), q / max(q.sum(), 1e-12)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def _rgb_hists(rgb: np.ndarray) -> list[np.ndarray]:
    return [np.bincount(rgb[..., c].ravel(), minlength=BINS) for c in range(3)]


def _ab_hists(ab: np.ndarray) -> list[np.ndarray]:
    return [np.histogram(ab[..., c], bins=BINS, range=(-128.0, 128.0))[0] for c in range(2)]


class VideoMetrics:
    """Streaming warp error, CDC (RGB and a*b*), and PSNR / colourfulness against colour
    ground truth when given: ``add`` frame by frame, then ``summary()``."""

    def __init__(self, preset: str = "medium") -> None:
        self._flow = fl.Flow(preset)
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # guide, rgb, ab
        self._hists: deque = deque(maxlen=max(INTERVALS) + 1)
        self._warp: list[tuple[float, float]] = []
        self._cdc: dict[int, list[tuple[float, float]]] = {k: [] for k in INTERVALS}
        self._psnr: list[float] = []
        self._cf: list[tuple[float, float]] = []
        self.frames = 0

    def add(self, output: np.ndarray, guide: np.ndarray | None = None,
            truth: np.ndarray | None = None, *, new_shot: bool = False) -> None:
        """One uint8 RGB output frame; `guide`: the frame flow is computed on (gray uint8
        or RGB ground truth; default: the output's own lightness); `truth`: colour ground
        truth for PSNR and colourfulness; `new_shot`: this frame starts a shot, so it is
        not compared with frames before it (a cut is meant to change colours)."""
        out = np.ascontiguousarray(np.asarray(output)[..., :3], dtype=np.uint8)
        unit = out.astype(np.float32) / 255.0
        ab = color.rgb_to_lab(unit)[..., 1:].astype(np.float32) / 100.0
        g = self._guide(out if guide is None else np.asarray(guide), out.shape[:2])
        if new_shot:
            self._prev = None
            self._hists.clear()
        prev = self._prev
        if prev is not None and prev[0].shape == g.shape:
            back, fwd_at, inside = fl.backward_pair(self._flow, g, prev[0])
            mask = fl.non_occluded(back, fwd_at, inside)
            if mask.any():
                w_rgb, _ = fl.sample_at(prev[1], back)
                w_ab, _ = fl.sample_at(prev[2], back)
                self._warp.append((float(((unit - w_rgb) ** 2).sum(-1)[mask].mean()),
                                   float(((ab - w_ab) ** 2).sum(-1)[mask].mean())))
        self._prev = (g, unit, ab)
        hists = (_rgb_hists(out), _ab_hists(ab * 100.0))
        self._hists.append(hists)
        for k in INTERVALS:
            if len(self._hists) > k:
                old = self._hists[-1 - k]
                self._cdc[k].append(
                    (float(np.mean([js_divergence(a, b) for a, b in zip(old[0], hists[0])])),
                     float(np.mean([js_divergence(a, b) for a, b in zip(old[1], hists[1])]))))
        if truth is not None:
            from ..evaluate import colourfulness, psnr

            t = np.asarray(truth)[..., :3]
            self._psnr.append(min(psnr(out, t), 100.0))
            self._cf.append((colourfulness(out), colourfulness(t)))
        self.frames += 1

    @staticmethod
    def _guide(guide: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if guide.shape[:2] != shape:
            from ..errors import InputError

            raise InputError(f"the guide / truth frame is {guide.shape[1]}x{guide.shape[0]} "
                             f"but the output is {shape[1]}x{shape[0]}")
        if guide.ndim == 2 and guide.dtype == np.uint8:
            return guide
        from ..image import prepare

        return fl.to_gray8(prepare(guide, what="guide frame").lightness)

    def summary(self) -> dict[str, Any]:
        """warp_error, warp_error_ab, cdc, cdc_ab (NaN when too few frames), psnr, cf, cf_truth."""
        nan = float("nan")
        warp = np.array(self._warp) if self._warp else np.full((1, 2), nan)
        per_k = [np.mean(v, axis=0) for v in self._cdc.values() if v]
        cdc = np.mean(per_k, axis=0) if per_k else np.array([nan, nan])
        out: dict[str, Any] = {"frames": self.frames,
                               "warp_error": float(warp[:, 0].mean()),
                               "warp_error_ab": float(warp[:, 1].mean()),
                               "cdc": float(cdc[0]), "cdc_ab": float(cdc[1])}
        if self._psnr:
            out["psnr"] = float(np.mean(self._psnr))
            out["cf"] = float(np.mean([c for c, _ in self._cf]))
            out["cf_truth"] = float(np.mean([t for _, t in self._cf]))
        return out


def warp_error(frames: Iterable[np.ndarray], guides: Iterable[np.ndarray] | None = None
               ) -> float:
    """Lai et al. (2018) warp error of uint8 RGB frames (flow on `guides` if given)."""
    m = VideoMetrics()
    for frame, guide in zip(frames, guides if guides is not None else _nones()):
        m.add(frame, guide)
    return m.summary()["warp_error"]


def cdc(frames: Iterable[np.ndarray]) -> float:
    """Colour distribution consistency (Liu et al. 2021) of uint8 RGB frames."""
    m = VideoMetrics()
    for frame in frames:
        m.add(frame)
    return m.summary()["cdc"]


def _nones() -> Iterable[None]:
    while True:
        yield None
