"""The CuPy PatchMatch on the CPU: the kernels' CUDA source, unchanged, built by the host
C++ compiler (`colorplug.nnf_cuda_emulation`) and driven by the CuPy engine's own host code
(`nnf_cupy.run_patchmatch`). Thresholds are what the algorithm achieves (docs/nnf.md)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from colorplug import nnf_cupy
from colorplug import nnf_cuda_emulation as emu
from colorplug.nnf import nearest_neighbor_field, patch_vectors

pytestmark = [pytest.mark.slow,  # compiles and runs the kernels on the CPU: pytest -m slow
              pytest.mark.skipif(emu.compiler() is None,
                                 reason="needs a C++ compiler (g++, c++ or clang++, or $CXX)")]


def smooth(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.randn(*shape, generator=g), 3, 1, 1)


def test_init_and_cost_kernels_equal_the_torch_engines_scores():
    s, t = smooth(2, 8, 9, 11, seed=1), smooth(2, 8, 7, 6, seed=2)
    ps, pt = patch_vectors(s), patch_vectors(t)                         # [B, D, N]
    k = emu.kernels()
    nnf = np.empty((2, 99), dtype=np.int32)
    k["init"](np.uint64(5), np.int32(42), nnf)
    assert nnf.min() >= 0 and nnf.max() < 42 and len(np.unique(nnf)) > 20
    score = nnf_cupy.patch_cost(ps.contiguous().numpy(),
                                pt.transpose(1, 2).contiguous().numpy(), nnf, k, np)
    idx = torch.from_numpy(nnf).long()
    # the torch engine's score(): gathered target vectors times source vectors, summed
    expect = torch.stack([(pt[b][:, idx[b]] * ps[b]).sum(0) for b in range(2)])
    assert score.shape == (2, 99) and score.dtype == np.float32
    assert torch.allclose(torch.from_numpy(score), expect, atol=1e-5)


def test_known_shift_found_repeatable_and_independent_of_thread_order():
    base = smooth(2, 16, 80, 80, seed=3)
    src, tgt = base[:, :, 8:72, 8:72], base[:, :, 3:67, 5:69]           # match (y + 5, x + 3)
    idx, sim = emu.patchmatch_emulated(src, tgt, seed=0)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    hit = (idx[..., 0] == yy + 5) & (idx[..., 1] == xx + 3)
    assert hit[:, 2:-8, 2:-6].float().mean() >= 0.95                    # measured: 1.0
    again = emu.patchmatch_emulated(src, tgt, seed=0)
    assert torch.equal(idx, again[0]) and torch.equal(sim, again[1])
    # every launch's threads last to first: the same field, so no thread reads what
    # another thread of the same launch writes (a race on a GPU)
    backwards = emu.patchmatch_emulated(src, tgt, seed=0, order="reverse")
    assert torch.equal(idx, backwards[0]) and torch.equal(sim, backwards[1])


def _ratios(s, t):
    _, ex = nearest_neighbor_field(s, t, method="exact")
    _, cu = emu.patchmatch_emulated(s, t)
    _, pm = nearest_neighbor_field(s, t, method="patchmatch", engine="torch")
    assert (cu <= ex + 1e-4).all()                                      # never beats exact
    return float(cu.mean() / ex.mean()), float(pm.mean() / ex.mean())


def test_structured_features_similarity_ratio():
    base = smooth(1, 32, 72, 72, seed=4)
    g = torch.Generator().manual_seed(5)
    src = base[:, :, 5:69, 3:67] + 0.1 * torch.randn(1, 32, 64, 64, generator=g)
    cupy_ratio, torch_ratio = _ratios(src, base[:, :, :64, :64])
    assert cupy_ratio >= 0.99                                           # measured: 0.9948
    assert abs(cupy_ratio - torch_ratio) <= 0.005                       # torch: 0.9949


def test_random_blurred_noise_similarity_ratio():
    """Two independent blurred-noise fields: neighbouring matches say little, and both
    engines stop near 0.88 of exact (tests/test_nnf_cupy.py's GPU twin)."""
    s, t = smooth(2, 64, 64, 64, seed=4), smooth(2, 64, 64, 64, seed=5)
    cupy_ratio, torch_ratio = _ratios(s, t)
    # Evidence independent of the kernels: the exact search on the same input is the
    # optimum (ratio <= 1, analytic), and the torch engine, a separate implementation of
    # the same PatchMatch, lands within 0.01 of it (both measured near 0.88 here).
    assert cupy_ratio <= 1.0 + 1e-6
    assert abs(cupy_ratio - torch_ratio) <= 0.01


def test_emulation_rejects_wrong_argument_types_and_out_of_bounds_reads():
    k = emu.kernels()
    nnf = np.zeros((1, 4), dtype=np.int32)
    with pytest.raises(emu.EmulationError, match="seed is unsigned long long"):
        k["step"]((1,), (256,), (np.zeros((1, 1, 4), np.float32), np.zeros((1, 4, 1), np.float32),
                                 nnf, np.zeros((1, 4), np.float32), nnf.copy(),
                                 np.zeros((1, 4), np.float32), *[np.int32(1)] * 8, 7))
    with pytest.raises(emu.EmulationError, match="nnf_in is int\\*, got a int64 array"):
        k["step"]((1,), (256,), (np.zeros((1, 1, 4), np.float32), np.zeros((1, 4, 1), np.float32),
                                 nnf.astype(np.int64), np.zeros((1, 4), np.float32), nnf.copy(),
                                 np.zeros((1, 4), np.float32), *[np.int32(1)] * 8, np.uint64(7)))
    src, tgt = np.ones(4, np.float32), np.ones(4, np.float32)
    with pytest.raises(emu.EmulationError, match="out-of-bounds.*'tgt'"):  # nnf 9 of nt 4
        k["cost"](src, tgt, np.full((1, 4), 9, np.int32), np.int32(1), np.int32(4), np.int32(4))


@pytest.mark.parametrize("hs, ws, ht, wt, b", [(1, 1, 1, 1, 1), (3, 5, 1, 7, 3),
                                                (17, 3, 5, 40, 3), (40, 70, 33, 21, 2)])
def test_odd_shapes_return_in_range_matches_and_their_true_similarity(hs, ws, ht, wt, b):
    """Non-square maps, 1-pixel sides, batches that end mid-block: every index lies in the
    target and the similarity returned is the cosine of the patches it names."""
    s, t = smooth(b, 6, hs, ws, seed=hs), smooth(b, 6, ht, wt, seed=wt)
    idx, sim = emu.patchmatch_emulated(s, t, iterations=3)
    assert idx.shape == (b, hs, ws, 2) and sim.shape == (b, hs, ws)
    assert (idx[..., 0] >= 0).all() and (idx[..., 0] < ht).all()
    assert (idx[..., 1] >= 0).all() and (idx[..., 1] < wt).all()
    ps, pt = patch_vectors(s), patch_vectors(t)
    flat = (idx[..., 0] * wt + idx[..., 1]).view(b, -1)
    cosine = torch.stack([(pt[i][:, flat[i]] * ps[i]).sum(0) for i in range(b)])
    assert torch.allclose(cosine.view(b, hs, ws), sim, atol=1e-5)
    _, ex = nearest_neighbor_field(s, t, method="exact")
    assert (sim <= ex + 1e-5).all()
