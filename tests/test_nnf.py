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


def gaussian_field(*shape, sigma=2.0, seed=0):
    """Random features with spatial correlation (a Gaussian-smoothed noise field)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1.0) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def test_patchmatch_on_random_fields_reaches_097_of_exact():
    s, t = gaussian_field(2, 32, 48, 48, seed=8), gaussian_field(2, 32, 48, 48, seed=9)
    _, pm = nearest_neighbor_field(s, t, method="patchmatch", iterations=8)
    _, ex = nearest_neighbor_field(s, t, method="exact")
    assert pm.mean() >= 0.97 * ex.mean()


def test_patchmatch_on_random_network_features_reaches_097_of_exact():
    """Features of a randomly initialised ResNet-34 (the exemplar's similarity net, untrained)
    on two different crops of the sample photo."""
    from colorplug.backends.exemplar.model import SimilarityNet
    from colorplug.image import read_image

    torch.manual_seed(0)
    net = SimilarityNet().eval()
    from colorplug.cli import SAMPLE
    gray = torch.from_numpy(read_image(SAMPLE)).float()
    a = gray[40:168, 60:188][None, None] / 2.55
    b = gray[150:278, 200:328][None, None] / 2.55
    with torch.no_grad():
        fa, fb = net(a)[1], net(b)[1]   # layer1: [1, 64, 32, 32]
    _, pm = nearest_neighbor_field(fa, fb, method="patchmatch")
    _, ex = nearest_neighbor_field(fa, fb, method="exact")
    assert pm.mean() >= 0.97 * ex.mean()


def test_refine_field_is_exact_within_its_window():
    from colorplug.nnf import refine_field

    s, t = smooth(1, 6, 10, 12, seed=10), smooth(1, 6, 9, 8, seed=11)
    g = torch.Generator().manual_seed(12)
    init = torch.stack([torch.randint(0, 9, (1, 10, 12), generator=g),
                        torch.randint(0, 8, (1, 10, 12), generator=g)], -1)
    idx, sim = refine_field(s, t, init, radius=1)
    ps, pt = patch_vectors(s)[0], patch_vectors(t)[0]
    for y in range(10):
        for x in range(12):
            iy, ix = init[0, y, x].tolist()
            cands = [(cy, cx) for cy in range(max(0, iy - 1), min(9, iy + 2))
                     for cx in range(max(0, ix - 1), min(8, ix + 2))]
            scores = [float(ps[:, y * 12 + x] @ pt[:, cy * 8 + cx]) for cy, cx in cands]
            assert sim[0, y, x].item() == pytest.approx(max(scores), abs=1e-5)
            assert tuple(idx[0, y, x].tolist()) in cands


def test_coarse_to_fine_finds_a_known_shift():
    from colorplug.nnf import refine_field, upsample_field

    base = smooth(1, 16, 80, 80, seed=13)
    src, tgt = base[:, :, 8:72, 8:72], base[:, :, 4:68, 6:70]   # match (y + 4, x + 2)
    coarse, _ = nearest_neighbor_field(F.avg_pool2d(src, 2), F.avg_pool2d(tgt, 2), method="exact")
    init = upsample_field(coarse, 64, 64, (32, 32), (64, 64))
    idx, _ = refine_field(src, tgt, init, radius=1)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    hit = (idx[0, ..., 0] == yy + 4) & (idx[0, ..., 1] == xx + 2)
    assert hit[2:-6, 2:-4].float().mean() >= 0.95


def test_warp_gathers_by_field():
    from colorplug.nnf import warp

    values = torch.arange(12.0).view(1, 1, 3, 4)
    field = torch.tensor([[[[2, 3], [0, 0]]]])     # [1, 1, 2, 2]
    assert warp(values, field).view(-1).tolist() == [11.0, 0.0]


def test_cupy_engine_needs_cuda():
    with pytest.raises(colorplug.InputError, match="engine='cupy' needs CUDA"):
        nearest_neighbor_field(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2),
                               method="patchmatch", engine="cupy")


def _kernels_fail_to_compile(monkeypatch):
    """CuPy present and a CUDA device (as far as `nnf` can tell) but its kernels do not
    compile: the state of a CuPy wheel without an NVRTC library."""
    from colorplug import nnf_cupy

    def no_nvrtc():
        raise nnf_cupy.KernelCompileError("RuntimeError: CuPy failed to load libnvrtc.so.13")

    monkeypatch.setattr(nnf_cupy, "can_run", lambda tensor: True)
    monkeypatch.setattr(nnf_cupy, "compiled_kernels", no_nvrtc)
    monkeypatch.setattr(nnf_cupy, "patchmatch_cuda", lambda *a, **k: pytest.fail("launched"))


def test_auto_engine_falls_back_to_torch_when_cupy_kernels_do_not_compile(monkeypatch):
    _kernels_fail_to_compile(monkeypatch)
    s, t = smooth(1, 4, 12, 12, seed=8), smooth(1, 4, 12, 12, seed=9)
    with pytest.warns(RuntimeWarning, match="did not compile.*libnvrtc.*using the torch engine"):
        idx, sim = nearest_neighbor_field(s, t, method="patchmatch", engine="auto", seed=2)
    ref_idx, ref_sim = nearest_neighbor_field(s, t, method="patchmatch", engine="torch", seed=2)
    assert torch.equal(idx, ref_idx) and torch.equal(sim, ref_sim)


def test_cupy_engine_names_the_compile_failure(monkeypatch):
    _kernels_fail_to_compile(monkeypatch)
    with pytest.raises(colorplug.InputError, match="kernels did not compile.*libnvrtc"):
        nearest_neighbor_field(smooth(1, 4, 6, 6), smooth(1, 4, 6, 6), method="patchmatch",
                               engine="cupy")


def test_compiled_kernels_turns_a_compile_error_into_kernel_compile_error(monkeypatch):
    """`compiled_kernels` compiles eagerly, so the failure surfaces before any launch."""
    import sys
    import types

    from colorplug import nnf_cupy

    launches = []

    class Elementwise:
        def __init__(self, *spec):
            self.spec = spec

        def __call__(self, *args):
            launches.append(self.spec[-1])

    class Raw:
        def __init__(self, code, name):
            pass

        def compile(self):
            raise RuntimeError("step.cu(12): error: identifier \"min\" is undefined")

    fake = types.SimpleNamespace(ElementwiseKernel=Elementwise, RawKernel=Raw,
                                 zeros=lambda *a, **k: None, int32=int, uint64=int, float32=float)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(nnf_cupy, "_compile_failure", [])
    nnf_cupy.kernels.cache_clear()
    try:
        for _ in range(2):  # the second call answers from the remembered failure
            with pytest.raises(nnf_cupy.KernelCompileError, match="identifier .min. is undefined"):
                nnf_cupy.compiled_kernels()
    finally:
        nnf_cupy.kernels.cache_clear()
    assert launches == ["colorplug_pm_init", "colorplug_pm_cost"]


def _crossover_side(exact_s: list[float], engine_s: list[float], sides=(128, 256)) -> float:
    """Side (positions per map = side²) where exact and PatchMatch take equal time, on
    log-log axes between two measured sizes."""
    import math

    r0, r1 = (math.log(e / p) for e, p in zip(exact_s, engine_s))
    n0, n1 = (math.log(s * s) for s in sides)
    return math.sqrt(math.exp(n0 + (n1 - n0) * (-r0) / (r1 - r0)))


def test_auto_thresholds_follow_the_measured_crossovers():
    """`auto` switches to PatchMatch where it got faster in benchmarks/results: above 256² on
    2 CPU cores, ~150² with the CuPy kernels and ~200² with the torch engine on CUDA."""
    import json
    from pathlib import Path

    from colorplug import nnf

    cuda = json.loads((Path(__file__).parents[1] / "benchmarks/results/nnf_cuda.json"
                       ).read_text())["maps"]
    small, large = cuda["128x128xC64"], cuda["256x256xC64"]
    for engine in ("cupy", "torch"):
        side = _crossover_side([small["exact_s"], large["exact_s"]],
                               [small[f"patchmatch_{engine}"]["s"],
                                large[f"patchmatch_{engine}"]["s"]])
        assert nnf.auto_exact_max("cuda", engine) ** 0.25 == pytest.approx(side, rel=0.05)
    assert nnf.auto_exact_max("cpu", "torch") == 256 ** 4


def test_auto_picks_patchmatch_above_the_threshold(monkeypatch):
    """The threshold is what `method="auto"` acts on: under it the exact field, above it
    PatchMatch's (identical to an explicit call with the same seed)."""
    from colorplug import nnf

    s, t = smooth(1, 4, 12, 12, seed=4), smooth(1, 4, 12, 12, seed=5)
    exact = nearest_neighbor_field(s, t, method="exact")
    auto = nearest_neighbor_field(s, t, seed=1)
    assert torch.equal(auto[0], exact[0])
    monkeypatch.setattr(nnf, "AUTO_EXACT_MAX", 12 ** 4 - 1)
    patch = nearest_neighbor_field(s, t, method="patchmatch", engine="torch", seed=1)
    auto = nearest_neighbor_field(s, t, seed=1)
    assert torch.equal(auto[0], patch[0]) and torch.equal(auto[1], patch[1])
    assert not torch.equal(patch[1], exact[1])


def test_auto_threshold_uses_the_engine_that_would_run(monkeypatch):
    """On CUDA, `auto` takes the CuPy crossover only where the CuPy kernels compile; when
    they do not (no NVRTC), the torch engine runs, so its crossover applies."""
    from colorplug import nnf, nnf_cupy

    cuda_like = torch.zeros(1, 1, 1, 1)
    monkeypatch.setattr(nnf_cupy, "can_run", lambda tensor: True)
    monkeypatch.setattr(nnf_cupy, "compiled_kernels", lambda: object())
    assert nnf.patchmatch_engine(cuda_like, "auto") == "cupy"
    assert nnf.patchmatch_engine(cuda_like, "torch") == "torch"
    _kernels_fail_to_compile(monkeypatch)
    assert nnf.patchmatch_engine(cuda_like, "auto") == "torch"
    monkeypatch.setattr(nnf_cupy, "can_run", lambda tensor: False)
    monkeypatch.setattr(nnf_cupy, "compiled_kernels", lambda: object())
    assert nnf.patchmatch_engine(cuda_like, "auto") == "torch"
    assert nnf.auto_exact_max("cuda", "cupy") < nnf.auto_exact_max("cuda", "torch")
    with pytest.raises(colorplug.InputError, match="engine must be 'cupy' or 'torch'"):
        nnf.auto_exact_max("cuda", "auto")


def test_engine_is_checked_for_every_method():
    with pytest.raises(colorplug.InputError, match="engine must be 'auto', 'cupy' or 'torch'"):
        nearest_neighbor_field(smooth(1, 4, 6, 6), smooth(1, 4, 6, 6), method="exact",
                               engine="bogus")
