"""Levin, Lischinski & Weiss (2004): colorization using optimization.

Neighbouring pixels of similar intensity should get similar chroma. For the 8-neighbour
graph of the image with affinities ``w_rs = exp(-(Y_r - Y_s)^2 / (2 sigma^2))`` the chroma
U minimises ``sum_rs w_rs (U_r - U_s)^2 + lam * sum_r U_r^2`` with U fixed at the hinted
pixels. This is Levin's objective in its symmetric (graph Laplacian) form, which makes the
system symmetric positive definite; the small ``lam`` term lets chroma fade to gray where
no hint reaches (across a strong edge) instead of leaking a lone scribble everywhere.
The sparse system ``(L_uu + lam I) x_u = W_uk x_k`` is solved per channel by cascadic
multigrid: exact (sparse LU) on a 2x2-coarsened pyramid's smallest level,
then Jacobi-preconditioned conjugate gradients on each finer level from the upsampled
coarser solution. `benchmarks/scribble.py` measures time; the tests compare it with the
exact solution.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

import colorplug
from colorplug.pipeline import ChromaColorizer
from colorplug.propagation import affinity_laplacian, spread

from .hints import parse_hints
from .plugin import SCRIBBLE

COARSEST = 100_000  # pixels: at or below this, solve exactly (sparse LU)


def _downsample(y: np.ndarray, ab: np.ndarray, mask: np.ndarray):
    """2x2 coarsening: mean intensity; a block is hinted if any pixel is (mean of hints)."""
    h, w = y.shape
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    pad = ((0, h2 * 2 - h), (0, w2 * 2 - w))
    yp = np.pad(y, pad, mode="edge").reshape(h2, 2, w2, 2).mean(axis=(1, 3))
    mp = np.pad(mask, pad).reshape(h2, 2, w2, 2)
    abp = np.pad(ab * mask[..., None], pad + ((0, 0),)).reshape(h2, 2, w2, 2, 2)
    count = mp.sum(axis=(1, 3))
    ab2 = abp.sum(axis=(1, 3)) / np.maximum(count, 1)[..., None]
    return yp, ab2, count > 0


def pcg(A: sp.csr_matrix, B: np.ndarray, X: np.ndarray, free: np.ndarray, iters: int,
        rtol: float = 1e-6) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients on all columns of B at once.

    Only rows where `free` is set are unknowns; the others keep their value in X (the
    hints), which is CG on the sub-system without building it.
    """
    f = free[:, None].astype(X.dtype)
    inv_diag = f / A.diagonal()[:, None]
    R = (B - A @ X) * f
    Z = inv_diag * R
    P = Z.copy()
    rz = np.einsum("ij,ij->j", R, Z)
    stop = (rtol * np.linalg.norm(R, axis=0)) ** 2 + 1e-30
    for i in range(iters):
        AP = A @ P
        AP *= f
        alpha = rz / np.maximum(np.einsum("ij,ij->j", P, AP), 1e-30)
        X += alpha * P
        R -= alpha * AP
        if i % 8 == 7 and (np.einsum("ij,ij->j", R, R) <= stop).all():
            break
        np.multiply(inv_diag, R, out=Z)
        rz_new = np.einsum("ij,ij->j", R, Z)
        P *= rz_new / np.maximum(rz, 1e-30)
        P += Z
        rz = rz_new
    return X


def _solve_exact(y, ab, mask, sigma, lam):
    """Direct sparse LU solve of the sub-system of unknown pixels (small levels)."""
    return spread(y, ab, mask, sigma=sigma, lam=lam)


def propagate(y: np.ndarray, hint_ab: np.ndarray, mask: np.ndarray, *, sigma: float = 0.05,
              lam: float = 1e-6, iters: int = 15) -> np.ndarray:
    """Chroma (H, W, 2) spreading the hinted a*b* over the image (y in [0, 1]).

    Cascadic multigrid: the problem is coarsened by 2x2 until it is small, solved there
    exactly (sparse LU), and each finer level starts from the coarser solution and runs `iters`
    Jacobi-preconditioned conjugate-gradient iterations.
    """
    pyramid = [(y.astype(np.float64), hint_ab.astype(np.float64), mask.astype(bool))]
    while pyramid[-1][0].size > COARSEST and min(pyramid[-1][0].shape) > 8:
        pyramid.append(_downsample(*pyramid[-1]))
    x = None
    for level in range(len(pyramid) - 1, -1, -1):
        yl, abl, ml = pyramid[level]
        if x is None:
            x = _solve_exact(yl, abl, ml, sigma, lam * 2 ** level)
            continue
        up = np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)[:yl.shape[0], :yl.shape[1]]
        X = np.where(ml[..., None], abl, up).reshape(-1, 2).astype(np.float32)
        lap = affinity_laplacian(yl, sigma, lam * 2 ** level, dtype=np.float32)
        x = pcg(lap, np.zeros_like(X), X, ~ml.ravel(), iters).reshape(yl.shape + (2,))
    return x.astype(np.float32)


class ScribbleColorizer(ChromaColorizer):
    info = SCRIBBLE

    def __init__(self, *, sigma: float = 0.05, lam: float = 1e-6, **options: Any) -> None:
        super().__init__(**options)
        if sigma <= 0 or lam < 0:
            raise colorplug.InputError("sigma must be > 0 and lam >= 0")
        self.sigma, self.lam = sigma, lam

    def predict_chroma(self, lightness, *, reference, hints):
        out = []
        for lum in lightness:
            ab, mask = parse_hints(hints, lum.shape)
            out.append(propagate(lum / 100.0, ab, mask, sigma=self.sigma, lam=self.lam))
        return out
