"""Nearest-neighbour-field engine: time and accuracy of each method, side by side.

    python benchmarks/nnf.py [--device cpu|cuda] [--threads 2] [--seed-pairs 96]
                             [--pm-pairs 8] [--sizes 128:64 128:256 256:64 256:256]
                             [--no-emulation] [--only-accuracy] [--out FILE]

- The seed thesis's workload: features [96, 64, 64, 64], 3x3 patches, cosine.
- Larger maps, one pair each: time, mean-similarity ratio and exact-hit rate vs exact.
- A known shift (source = target moved by (5, 3), no noise): rate of interior pixels that
  find it.
- Random features: the tests' blurred noise (3x3 box blur, two independent fields), smooth
  random fields (Gaussian sigma 2) and independent per-pixel noise (64², C=64).
Methods: exact, PatchMatch in torch, on CUDA with CuPy the CuPy PatchMatch, and (CPU, with
a C++ compiler) the CuPy PatchMatch's kernels compiled for the CPU and run by its own host
code (`colorplug.nnf_cuda_emulation`, one thread, no SIMD: its times say nothing about a
GPU, its similarities are the CuPy engine's).
Structured features are smooth random maps (a 3x3 box blur of Gaussian noise), source =
target shifted by (5, 3) plus noise, so matches are structured as real CNN features are.
On CPU, PatchMatch on the seed workload runs on `--pm-pairs` pairs and is scaled.
"""
from __future__ import annotations

import argparse
import os
import time

from _common import save_json


def pair(b: int, c: int, side: int, seed: int, device: str):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    base = F.avg_pool2d(torch.randn(b, c, side + 8, side + 8, generator=g), 3, 1, 1)
    src = base[:, :, 5:5 + side, 3:3 + side] + 0.1 * torch.randn(b, c, side, side, generator=g)
    return src.to(device), base[:, :, :side, :side].contiguous().to(device)


def gaussian_field(b: int, c: int, side: int, seed: int, device: str, sigma: float = 2.0):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, side, side, generator=g)
    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1.0) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x.to(device)


def blurred_noise(b: int, c: int, side: int, seed: int, device: str):
    """A 3x3 box blur of Gaussian noise (tests/test_nnf_cupy.py's `smooth`)."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.randn(b, c, side, side, generator=g), 3, 1, 1).to(device)


def known_shift(res: dict, methods: dict, run, device: str) -> None:
    """tests' known shift: base blurred noise, source and target crops (5, 3) apart."""
    import torch

    base = blurred_noise(2, 16, 80, 3, device)
    src, tgt = base[:, :, 8:72, 8:72], base[:, :, 3:67, 5:69]
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    _, (_, se) = run(src, tgt, methods["exact"])
    row = {}
    for name, kw in methods.items():
        _, (idx, sim) = run(src, tgt, kw)
        idx = idx.cpu()
        hit = (idx[..., 0] == yy + 5) & (idx[..., 1] == xx + 3)
        row[name] = {"hit_rate_interior": float(hit[:, 2:-8, 2:-6].float().mean()),
                     "hit_rate_all": float(hit.float().mean()),
                     "sim_ratio": float(sim.mean() / se.mean())}
    res["known_shift"] = row
    print("known shift (5, 3), 2 x 16 x 64²: interior hit rate " +
          ", ".join(f"{k} {v['hit_rate_interior']:.4f}" for k, v in row.items()))


def seed_workload(res: dict, methods: dict, run, args, cuda: bool) -> None:
    """[seed_pairs, 64, 64, 64]: exact on all pairs, PatchMatch on `--pm-pairs` on the CPU."""
    src, tgt = pair(args.seed_pairs, 64, 64, 0, args.device)
    sec, (_, se) = run(src, tgt, methods["exact"])
    res["seed_workload"]["exact_s"] = sec
    print(f"seed workload [{args.seed_pairs}, 64, 64, 64] on {res['device_name']}: exact {sec:.3f} s")
    for name, kw in list(methods.items())[1:]:
        k = args.seed_pairs if cuda and not kw.get("emulated") else args.pm_pairs
        sec, (_, sp) = run(src[:k], tgt[:k], kw)
        row = {"s": sec * args.seed_pairs / k, "pairs_run": k,
               "sim_ratio": float(sp.mean() / se[:k].mean())}
        res["seed_workload"][name] = row
        print(f"  {name}: {row['s']:.3f} s{' (scaled from %d pairs)' % k if k < args.seed_pairs else ''}, "
              f"similarity ratio {row['sim_ratio']:.4f}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed-pairs", type=int, default=96)
    p.add_argument("--pm-pairs", type=int, default=8, help="CPU: PatchMatch on this many of the "
                   "seed pairs, scaled to the full batch")
    p.add_argument("--sizes", nargs="*", default=["128:64", "128:256", "256:64"])
    p.add_argument("--reps", type=int, default=3, help="GPU: repetitions (median)")
    p.add_argument("--no-emulation", action="store_true",
                   help="skip the CPU emulation of the CuPy kernels")
    p.add_argument("--only-accuracy", action="store_true",
                   help="skip the seed workload and the large maps (timings)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import statistics

    import torch

    torch.set_num_threads(args.threads)
    from colorplug import nnf_cuda_emulation, nnf_cupy
    from colorplug.nnf import nearest_neighbor_field

    cuda = args.device.startswith("cuda")
    methods = {"exact": {"method": "exact"},
               "patchmatch_torch": {"method": "patchmatch", "engine": "torch"}}
    if cuda and nnf_cupy.available():
        methods["patchmatch_cupy"] = {"method": "patchmatch", "engine": "cupy"}
    if not args.no_emulation and nnf_cuda_emulation.compiler() is not None:
        methods["patchmatch_cupy_cpu_emulation"] = {"emulated": True}
        nnf_cuda_emulation.kernels()  # built (or loaded from the cache) before timing

    def nnf(s, t, emulated=False, **kw):
        if emulated:
            kw.pop("method", None)
            idx, sim = nnf_cuda_emulation.patchmatch_emulated(s.cpu(), t.cpu(), **kw)
            return idx.to(s.device), sim.to(s.device)
        return nearest_neighbor_field(s, t, **kw)

    def run(s, t, kw):
        reps = args.reps if cuda and not kw.get("emulated") else 1
        times = []
        out = None
        if cuda and not kw.get("emulated"):  # warm-up: kernels compiled, memory pools filled
            nnf(s, t, **kw)
            torch.cuda.synchronize()
        for _ in range(reps):
            t0 = time.perf_counter()
            out = nnf(s, t, **kw)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return statistics.median(times), out

    res: dict = {"threads": args.threads, "device": args.device, "methods": list(methods),
                 "device_name": torch.cuda.get_device_name() if cuda else "cpu",
                 "seed_workload": {}, "maps": {}, "known_shift": {}, "random": {},
                 "load_average_1min_start": os.getloadavg()[0]}
    known_shift(res, methods, run, args.device)
    if args.only_accuracy:
        args.seed_pairs, args.sizes = 0, []
    if args.seed_pairs:
        seed_workload(res, methods, run, args, cuda)
    for spec in args.sizes:
        side, c = (int(v) for v in spec.split(":"))
        s, t = pair(1, c, side, 1, args.device)
        sec, (ie, se) = run(s, t, methods["exact"])
        row = {"exact_s": sec}
        line = f"{side}x{side} C={c}: exact {sec:.3f} s"
        for name, kw in list(methods.items())[1:]:
            sec, (ip, sp) = run(s, t, kw)
            row[name] = {"s": sec, "sim_ratio": float(sp.mean() / se.mean()),
                         "exact_hit_rate": float((ip == ie).all(-1).float().mean()),
                         "speedup_vs_exact": row["exact_s"] / sec}
            line += (f"; {name} {sec:.3f} s (x{row['exact_s'] / sec:.1f}), ratio "
                     f"{row[name]['sim_ratio']:.4f}, hit {row[name]['exact_hit_rate']:.3f}")
        res["maps"][f"{side}x{side}xC{c}"] = row
        print(line)
    for kind in ("blurred_noise", "smooth_field", "iid_noise"):
        if kind == "blurred_noise":  # tests/test_nnf_cupy.py's random fields
            s, t = (blurred_noise(4, 64, 64, i, args.device) for i in (4, 5))
        elif kind == "smooth_field":
            s, t = (gaussian_field(2, 64, 64, i, args.device) for i in (2, 3))
        else:
            g = torch.Generator().manual_seed(4)
            s, t = (torch.randn(2, 64, 64, 64, generator=g).to(args.device) for _ in range(2))
        _, (ie, se) = run(s, t, methods["exact"])
        row = {}
        for name, kw in list(methods.items())[1:]:
            for it in (5, 10):
                _, (ip, sp) = run(s, t, {**kw, "iterations": it})
                row[f"{name}_it{it}"] = float(sp.mean() / se.mean())
        res["random"][kind] = row
        print(f"random features ({kind}, {s.shape[0]} x 64 x 64², C=64) similarity ratios: " +
              ", ".join(f"{k} {v:.4f}" for k, v in row.items()))
    res["load_average_1min_end"] = os.getloadavg()[0]
    save_json(args.out, res)


if __name__ == "__main__":
    main()
