"""Nearest-neighbour fields between feature maps: for every 3x3 patch of `source` (all
channels), the most cosine-similar 3x3 patch of `target`.

    indices, similarity = nearest_neighbor_field(source, target, method="auto")

`source` [B, C, Hs, Ws] and `target` [B, C, Ht, Wt] (torch tensors or numpy arrays, any
device); `indices` [B, Hs, Ws, 2] holds (y, x) in the target and `similarity` [B, Hs, Ws]
the cosine similarity of the two patch vectors (borders replicate-padded). For T->R and
R->T, call it twice with the arguments swapped.

Methods, one contract:
- ``exact``: chunked matrix products over normalized patch vectors (torch, CPU or CUDA);
  memory bounded by ``max_elements`` per chunk, never the full (Hs*Ws) x (Ht*Wt) matrix.
- ``patchmatch``: randomized PatchMatch (Barnes et al. 2009): random initialisation,
  jump-flood propagation (neighbours at distance k, k/2, ..., 1 offer their match shifted
  by the offset), then random search in halving radii. Two engines: ``cupy`` (CUDA
  tensors with CuPy installed: ElementwiseKernel + RawKernel, `colorplug.nnf_cupy`) and
  ``torch`` (vectorized torch on any device, no Python loop over pixels).
- ``auto``: exact up to a number of source x target positions that depends on where it
  runs (``auto_exact_max``), PatchMatch above.

Measured on 2 CPU cores (benchmarks/nnf.py, C = 64): exact 1.6 s at 128², 29.8 s at 256²;
torch PatchMatch 7.9 s and 36.8 s (similarity ratio 0.998, exact-hit rate 0.96-0.98), so
exact wins on the CPU up to 256² and the crossover lies above it (PatchMatch grows as
N log N, exact as N²). PatchMatch relies on coherent features: on features of real images
(trained or random-init networks) and on smooth random fields it reaches 0.97-0.999 of
exact; on two independent 3x3-blurred noise fields 0.88 (0.89 for the CuPy kernels, run
on the CPU by `colorplug.nnf_cuda_emulation`); on independent per-pixel noise, where
neighbouring matches say nothing, 0.75-0.79.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .errors import InputError

#: Above this many source x target positions per image, "auto" uses PatchMatch on the CPU
#: (benchmarks/nnf.py, 2 CPU cores: exact is still faster at 256² x 256²).
AUTO_EXACT_MAX = 256 * 256 * 256 * 256
#: The same on CUDA, per PatchMatch engine: the crossovers of benchmarks/results/nnf_cuda.json
#: (H200, C = 64; exact 0.008 s at 128², 0.157 s at 256²; CuPy 0.014 / 0.023 s; torch 0.028 /
#: 0.080 s), interpolated on log-log axes: CuPy wins above ~150², the torch engine above ~200².
AUTO_EXACT_MAX_CUDA = {"cupy": 150 ** 4, "torch": 200 ** 4}


def auto_exact_max(device_type: str, engine: str) -> int:
    """Source x target positions up to which "auto" computes the exact field: on CUDA the
    GPU crossover of the PatchMatch `engine` that would run ("cupy" or "torch"), else the
    CPU's."""
    if engine not in AUTO_EXACT_MAX_CUDA:
        raise InputError(f"engine must be 'cupy' or 'torch' (the one that would run); "
                         f"got {engine!r}")
    if device_type == "cuda":
        return AUTO_EXACT_MAX_CUDA[engine]
    return AUTO_EXACT_MAX


def patchmatch_engine(source: Any, engine: str) -> str:
    """The PatchMatch engine that would run on `source` for `engine` ("auto", "cupy" or
    "torch"): "cupy" only where the tensor is on CUDA and the CuPy kernels compile."""
    if engine == "torch":
        return "torch"
    from . import nnf_cupy

    if not nnf_cupy.can_run(source):
        return "torch"
    try:
        nnf_cupy.compiled_kernels()  # cached after the first call
    except nnf_cupy.KernelCompileError:
        return "torch"
    return "cupy"


def as_tensor(x: Any, name: str):
    """A feature map given as numpy or torch -> a float torch tensor (shared by the engines)."""
    import torch

    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch tensor or numpy array, not {type(x).__name__}")
    if x.ndim != 4:
        raise InputError(f"{name} must be shaped [B, C, H, W]; got {tuple(x.shape)}")
    if 0 in x.shape:
        raise InputError(f"{name} is empty: shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    if not torch.isfinite(x).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return x.float()


def patch_vectors(feat: Any, patch_size: int = 3):
    """[B, C, H, W] -> unit-length patch vectors [B, C*k*k, H*W] (replicate padding)."""
    import torch.nn.functional as F

    pad = patch_size // 2
    padded = F.pad(feat, (pad, pad, pad, pad), mode="replicate") if pad else feat
    return F.normalize(F.unfold(padded, patch_size), dim=1, eps=1e-8)


def _exact(s, t, patch_size: int, max_elements: int):
    """Per image: patch vectors, then row chunks of the similarity matrix and their max."""
    import torch

    b = s.shape[0]
    ns = s.shape[2] * s.shape[3]
    nt, wt = t.shape[2] * t.shape[3], t.shape[3]
    chunk = max(1, max_elements // nt)
    idx = torch.empty(b, ns, dtype=torch.long, device=s.device)
    sim = torch.empty(b, ns, dtype=s.dtype, device=s.device)
    for i in range(b):  # one image at a time: memory stays at D x (Hs*Ws + Ht*Wt)
        ps = patch_vectors(s[i:i + 1], patch_size)[0].T.contiguous()  # [Ns, D]
        pt = patch_vectors(t[i:i + 1], patch_size)[0]  # [D, Nt]
        for s0 in range(0, ns, chunk):
            sim[i, s0:s0 + chunk], idx[i, s0:s0 + chunk] = (ps[s0:s0 + chunk] @ pt).max(dim=1)
    return torch.stack([idx // wt, idx % wt], -1), sim


def _patchmatch(s, t, patch_size: int, iterations: int, seed: int):
    import torch

    b = s.shape[0]
    hs, ws = s.shape[-2:]
    ht, wt = t.shape[-2:]
    dev = s.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    out_idx, out_sim = [], []
    for i in range(b):  # one image at a time bounds memory to D x Hs*Ws
        src = patch_vectors(s[i:i + 1], patch_size)[0]
        tgt = patch_vectors(t[i:i + 1], patch_size)[0]

        def score(cy, cx):
            flat = (cy * wt + cx).reshape(-1)
            return (tgt[:, flat] * src).sum(0).view(hs, ws)

        ny = torch.randint(0, ht, (hs, ws), generator=gen, device=dev)
        nx = torch.randint(0, wt, (hs, ws), generator=gen, device=dev)
        best = score(ny, nx)

        def consider(cy, cx):
            nonlocal ny, nx, best
            cy = cy.clamp(0, ht - 1)
            cx = cx.clamp(0, wt - 1)
            s = score(cy, cx)
            better = s > best
            ny = torch.where(better, cy, ny)
            nx = torch.where(better, cx, nx)
            best = torch.where(better, s, best)

        steps = []
        k = 1
        while k < max(hs, ws):
            steps.append(k)
            k *= 2
        for _ in range(iterations):
            for k in reversed(steps or [1]):  # jump flooding: far neighbours first
                for dy, dx in ((k, 0), (-k, 0), (0, k), (0, -k)):
                    # the neighbour at (y+dy, x+dx) matched q; offer q - (dy, dx) here
                    sy = torch.roll(ny, shifts=(-dy, -dx), dims=(0, 1)) - dy
                    sx = torch.roll(nx, shifts=(-dy, -dx), dims=(0, 1)) - dx
                    consider(sy, sx)
            radius = max(ht, wt)
            while radius >= 1:  # random search around the current best, halving radius
                ry = torch.randint(-radius, radius + 1, (hs, ws), generator=gen, device=dev)
                rx = torch.randint(-radius, radius + 1, (hs, ws), generator=gen, device=dev)
                consider(ny + ry, nx + rx)
                radius //= 2
        out_idx.append(torch.stack([ny, nx], -1))
        out_sim.append(best)
    return torch.stack(out_idx), torch.stack(out_sim)


def nearest_neighbor_field(source: Any, target: Any, *, patch_size: int = 3,
                           method: str = "auto", iterations: int = 5, seed: int = 0,
                           max_elements: int = 1 << 22, engine: str = "auto"):
    """(indices [B, Hs, Ws, 2] (y, x) into target, cosine similarity [B, Hs, Ws]).

    `engine` (the PatchMatch engine, validated for every method): "cupy" (CUDA tensors,
    CuPy installed), "torch", or "auto" (CuPy when it can run, else torch; also torch, with
    a RuntimeWarning, when CuPy is present but its kernels do not compile, e.g. no NVRTC
    library). With method="auto" the engine that would run also sets where PatchMatch
    takes over from the exact search (`auto_exact_max`).
    """
    import torch

    s = as_tensor(source, "source")
    t = as_tensor(target, "target").to(s.device)
    if s.shape[:2] != t.shape[:2]:
        raise InputError(f"source {tuple(s.shape)} and target {tuple(t.shape)} must share "
                         "batch size and channels")
    if patch_size < 1 or patch_size % 2 == 0:
        raise InputError(f"patch_size must be odd and positive; got {patch_size}")
    if method not in ("auto", "exact", "patchmatch"):
        raise InputError(f"method must be 'auto', 'exact' or 'patchmatch'; got {method!r}")
    hs, ws = s.shape[-2:]
    ht, wt = t.shape[-2:]
    if engine not in ("auto", "cupy", "torch"):
        raise InputError(f"engine must be 'auto', 'cupy' or 'torch'; got {engine!r}")
    if method == "auto":
        limit = auto_exact_max(s.device.type, patchmatch_engine(s, engine))
        method = "exact" if hs * ws * ht * wt <= limit else "patchmatch"
    with torch.no_grad():
        if method == "exact":
            idx, sim = _exact(s, t, patch_size, max_elements)
            return idx.view(s.shape[0], hs, ws, 2), sim.view(s.shape[0], hs, ws)
        if engine != "torch":
            from . import nnf_cupy

            if nnf_cupy.can_run(s):
                try:
                    kernels = nnf_cupy.compiled_kernels()
                except nnf_cupy.KernelCompileError as exc:
                    if engine == "cupy":
                        raise InputError(f"engine='cupy': the CuPy kernels did not compile "
                                         f"({exc}); install CuPy with its NVRTC "
                                         "(pip install cupy-cuda13x) or use engine='torch'"
                                         ) from exc
                    warnings.warn(f"CuPy PatchMatch kernels did not compile ({exc}); "
                                  "using the torch engine", RuntimeWarning, stacklevel=2)
                else:
                    return nnf_cupy.patchmatch_cuda(patch_vectors(s, patch_size),
                                                    patch_vectors(t, patch_size), hs, ws, ht,
                                                    wt, iterations=iterations, seed=seed,
                                                    k=kernels)
        if engine == "cupy":
            raise InputError("engine='cupy' needs CUDA tensors and CuPy with a working CUDA "
                             "runtime (pip install cupy-cuda13x)")
        return _patchmatch(s, t, patch_size, iterations, seed)


def refine_field(source: Any, target: Any, init: Any, *, radius: int = 1, patch_size: int = 3):
    """Exhaustive search in a (2r+1)^2 window around `init` [B, Hs, Ws, 2] (y, x).

    The coarse-to-fine step: a field found at a coarser level, upsampled (coordinates x2),
    is refined at the finer level for the cost of (2r+1)^2 candidates per pixel.
    Returns (indices, similarity) like `nearest_neighbor_field`.
    """
    import torch

    s = as_tensor(source, "source")
    t = as_tensor(target, "target").to(s.device)
    init = torch.as_tensor(init, device=s.device).long()
    b, _, hs, ws = s.shape
    ht, wt = t.shape[-2:]
    if tuple(init.shape) != (b, hs, ws, 2):
        raise InputError(f"init must be shaped {(b, hs, ws, 2)}; got {tuple(init.shape)}")
    with torch.no_grad():
        out_idx, out_sim = [], []
        for i in range(b):
            src = patch_vectors(s[i:i + 1], patch_size)[0]          # [D, Hs*Ws]
            tgt = patch_vectors(t[i:i + 1], patch_size)[0]
            best = torch.full((hs * ws,), -2.0, device=s.device)
            cy0 = init[i, ..., 0].reshape(-1).clamp(0, ht - 1)
            cx0 = init[i, ..., 1].reshape(-1).clamp(0, wt - 1)
            by, bx = cy0.clone(), cx0.clone()
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    cy = (cy0 + dy).clamp(0, ht - 1)
                    cx = (cx0 + dx).clamp(0, wt - 1)
                    score = (tgt[:, cy * wt + cx] * src).sum(0)
                    better = score > best
                    best = torch.where(better, score, best)
                    by = torch.where(better, cy, by)
                    bx = torch.where(better, cx, bx)
            out_idx.append(torch.stack([by, bx], -1).view(hs, ws, 2))
            out_sim.append(best.view(hs, ws))
    return torch.stack(out_idx), torch.stack(out_sim)


def upsample_field(indices: Any, height: int, width: int, source_size: tuple[int, int],
                   target_size: tuple[int, int]):
    """A field [B, h, w, 2] resized to [B, height, width, 2], its (y, x) values rescaled from
    a target grid of `source_size` to one of `target_size`."""
    import torch
    import torch.nn.functional as F

    idx = torch.as_tensor(indices).float().permute(0, 3, 1, 2)
    idx = F.interpolate(idx, size=(height, width), mode="nearest")
    sy = target_size[0] / source_size[0]
    sx = target_size[1] / source_size[1]
    y = ((idx[:, 0] + 0.5) * sy - 0.5).round().clamp(0, target_size[0] - 1)
    x = ((idx[:, 1] + 0.5) * sx - 0.5).round().clamp(0, target_size[1] - 1)
    return torch.stack([y, x], -1).long()


def warp(values: Any, indices: Any):
    """Gather `values` [B, C, Ht, Wt] at a field [B, Hs, Ws, 2] (y, x) -> [B, C, Hs, Ws]."""
    import torch

    b, c, ht, wt = values.shape
    flat = (indices[..., 0] * wt + indices[..., 1]).reshape(b, 1, -1).expand(-1, c, -1)
    out = torch.gather(values.reshape(b, c, ht * wt), 2, flat)
    return out.view(b, c, *indices.shape[1:3])
