import pytest
import torch
import torch.nn.functional as F

import colorplug
from colorplug.nnf import nearest_neighbor_field, patch_vectors


def smooth(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.randn(*shape, generator=g), 3, 1, 1)


def test_exact_equals_brute_force_and_chunking_does_not_matter():
    s, t = smooth(2, 5, 9, 11, seed=1), smooth(2, 5, 7, 6, seed=2)
    idx, sim = nearest_neighbor_field(s, t, method="exact")
    assert idx.shape == (2, 9, 11, 2) and sim.shape == (2, 9, 11)
    ps, pt = patch_vectors(s), patch_vectors(t)
    full = torch.einsum("bdn,bdm->bnm", ps, pt)  # every source patch vs every target patch
    best = full.max(-1)
    assert torch.allclose(sim.view(2, -1), best.values, atol=1e-5)
    flat = idx[..., 0] * 6 + idx[..., 1]
    assert torch.equal(flat.view(2, -1), best.indices)
    idx2, sim2 = nearest_neighbor_field(s, t, method="exact", max_elements=10)  # tiny chunks
    assert torch.equal(idx, idx2) and torch.allclose(sim, sim2)


def test_patchmatch_finds_a_known_shift():
    base = smooth(2, 16, 80, 80, seed=3)
    src = base[:, :, 8:72, 8:72]
    tgt = base[:, :, 3:67, 5:69]  # the true match of (y, x) is (y + 5, x + 3)
    idx, sim = nearest_neighbor_field(src, tgt, method="patchmatch", seed=0)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    hit = (idx[..., 0] == yy + 5) & (idx[..., 1] == xx + 3)
    assert hit[:, 2:-8, 2:-6].float().mean() >= 0.95  # interior pixels whose match exists
    _, exact_sim = nearest_neighbor_field(src, tgt, method="exact")
    assert sim.mean() >= 0.97 * exact_sim.mean()


def test_patchmatch_on_noisy_structured_features():
    base = smooth(1, 32, 72, 72, seed=4)
    g = torch.Generator().manual_seed(5)
    src = base[:, :, 5:69, 3:67] + 0.1 * torch.randn(1, 32, 64, 64, generator=g)
    tgt = base[:, :, :64, :64]
    _, pm = nearest_neighbor_field(src, tgt, method="patchmatch")
    _, ex = nearest_neighbor_field(src, tgt, method="exact")
    assert pm.mean() >= 0.97 * ex.mean()
    assert (pm <= ex + 1e-5).all()  # never better than the exact optimum


def test_patchmatch_is_repeatable_and_numpy_works():
    s = smooth(1, 4, 20, 20, seed=6).numpy()
    t = smooth(1, 4, 20, 20, seed=7).numpy()
    a = nearest_neighbor_field(s, t, method="patchmatch", seed=3)
    b = nearest_neighbor_field(s, t, method="patchmatch", seed=3)
    assert torch.equal(a[0], b[0])
    assert nearest_neighbor_field(s, t)[0].shape == (1, 20, 20, 2)  # auto


@pytest.mark.parametrize("src, tgt, kw, msg", [
    (torch.zeros(3, 4, 5), torch.zeros(1, 3, 4, 5), {}, r"\[B, C, H, W\]"),
    (torch.zeros(1, 3, 4, 5), torch.zeros(1, 2, 4, 5), {}, "share batch size and channels"),
    (torch.full((1, 1, 2, 2), float("nan")), torch.zeros(1, 1, 2, 2), {}, "NaN"),
    (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), {"method": "fast"}, "method must be"),
    (torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), {"patch_size": 2}, "odd"),
    (torch.zeros(1, 1, 0, 2), torch.zeros(1, 1, 2, 2), {}, "empty"),
])
def test_bad_input(src, tgt, kw, msg):
    with pytest.raises(colorplug.InputError, match=msg):
        nearest_neighbor_field(src, tgt, **kw)
