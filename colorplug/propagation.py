"""Edge-aware spreading of sparse chroma over an image (Levin, Lischinski & Weiss 2004):
the graph Laplacian of the pixel grid with intensity affinities, and an exact solve that
spreads values known at a few pixels to the rest, fading where no known pixel reaches.

Shared by the built-in `guided` backend (which spreads the difference between the user's
hints and its network's prediction) and colorplug-classic's `scribble` (which spreads the
hints themselves)."""
from __future__ import annotations

import numpy as np


def affinity_laplacian(y: np.ndarray, sigma: float, lam: float = 0.0,
                       dtype: type = np.float64):
    """Graph Laplacian D - W (+ lam I) of the 8-neighbour grid of `y` (H, W), affinities
    ``exp(-(y_r - y_s)^2 / (2 sigma^2))`` (a scipy.sparse CSR matrix)."""
    import scipy.sparse as sp

    h, w = y.shape
    flat = y.ravel()
    n = h * w
    col = np.arange(n) % w
    degree = np.full(n, lam, dtype)
    diags, offsets = [], []
    for off, valid in ((1, col < w - 1), (w, None), (w + 1, col < w - 1), (w - 1, col > 0)):
        if off >= n:
            continue
        d = flat[off:] - flat[:-off]
        wgt = np.exp(-(d * d) / (2 * sigma * sigma)).astype(dtype)
        if valid is not None:
            wgt *= valid[:n - off]
        degree[:-off] += wgt
        degree[off:] += wgt
        diags += [-wgt, -wgt]
        offsets += [off, -off]
    return sp.diags([degree] + diags, [0] + offsets, shape=(n, n), format="csr")


def spread(y: np.ndarray, values: np.ndarray, known: np.ndarray, *, sigma: float,
           lam: float) -> np.ndarray:
    """(H, W, C) values equal to `values` where `known` and, elsewhere, minimising
    ``sum w_rs (x_r - x_s)^2 + lam sum x_r^2`` (edge-aware spreading that fades to 0 with
    the distance, in affinity units, to the nearest known pixel); sparse LU, exact."""
    from scipy.sparse.linalg import splu

    known_flat = known.ravel().astype(bool)
    flat = values.reshape(known_flat.size, -1).astype(np.float64)
    out = np.zeros_like(flat)
    out[known_flat] = flat[known_flat]
    unknown = ~known_flat
    if known_flat.any() and unknown.any():
        rows = affinity_laplacian(y.astype(np.float64), sigma, lam)[unknown]
        out[unknown] = splu(rows[:, unknown].tocsc()).solve(
            -(rows[:, known_flat] @ out[known_flat]))
    return out.reshape(values.shape)
