"""Welsh, Ashikhmin & Mueller (2002): transferring colour to grayscale images.

1. Luminance remapping: the reference's L* is shifted and scaled to the target's mean and
   standard deviation, so the two are compared on one scale.
2. A jittered grid of about `samples` reference pixels is drawn (the paper used ~200).
3. Each pixel is described by its L* and the standard deviation of L* in a `window`
   neighbourhood, weighted 50/50 as in the paper.
4. Every target pixel takes the a*b* of the best-matching sample (nearest neighbour in
   that 2-D feature space, found with a k-d tree). L* stays the target's own.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.spatial import cKDTree

import colorplug
from colorplug.pipeline import ChromaColorizer

from .plugin import TRANSFER


def local_std(lightness: np.ndarray, window: int) -> np.ndarray:
    mean = uniform_filter(lightness, window, mode="reflect")
    sq = uniform_filter(lightness * lightness, window, mode="reflect")
    return np.sqrt(np.maximum(sq - mean * mean, 0))


def jittered_samples(h: int, w: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """About n positions, one uniformly random point in each cell of a near-square grid."""
    rows = max(1, int(round(np.sqrt(n * h / w))))
    cols = max(1, int(round(n / rows)))
    ys = (np.arange(rows)[:, None] + rng.random((rows, cols))) * h / rows
    xs = (np.arange(cols)[None, :] + rng.random((rows, cols))) * w / cols
    return (np.minimum(ys.astype(int), h - 1).ravel(), np.minimum(xs.astype(int), w - 1).ravel())


class TransferColorizer(ChromaColorizer):
    info = TRANSFER

    def __init__(self, *, samples: int = 200, window: int = 5, seed: int = 0,
                 **options: Any) -> None:
        super().__init__(**options)
        if samples < 1 or window < 1:
            raise colorplug.InputError("samples and window must be positive")
        self.samples, self.window, self.seed = samples, window, seed

    def predict_chroma(self, lightness, *, reference, hints):
        ref_l, ref_ab = reference[..., 0].astype(np.float32), reference[..., 1:]
        rng = np.random.default_rng(self.seed)
        ys, xs = jittered_samples(*ref_l.shape, self.samples, rng)
        out = []
        for target in lightness:
            t_mean, t_std = float(target.mean()), float(target.std())
            r_mean, r_std = float(ref_l.mean()), float(ref_l.std())
            remapped = (ref_l - r_mean) * (t_std / r_std if r_std > 1e-6 else 1.0) + t_mean
            ref_feat = np.stack([remapped, local_std(remapped, self.window)], -1)[ys, xs]
            tgt_feat = np.stack([target, local_std(target, self.window)], -1)
            _, nearest = cKDTree(0.5 * ref_feat).query(0.5 * tgt_feat.reshape(-1, 2), k=1)
            out.append(ref_ab[ys, xs][nearest].reshape(target.shape + (2,)).astype(np.float32))
        return out

