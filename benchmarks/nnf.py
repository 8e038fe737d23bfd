"""Nearest-neighbour-field engine: time and accuracy of each method, side by side.

    python benchmarks/nnf.py [--threads 2] [--seed-pairs 96] [--pm-pairs 8]
                             [--sizes 128:64 128:256 256:64] [--out FILE]

- The seed thesis's workload: features [96, 64, 64, 64], 3x3 patches, cosine.
- Larger maps, one pair each: time, mean-similarity ratio and exact-hit rate vs exact.
Features are smooth random maps (a 3x3 box blur of Gaussian noise), source = target
shifted by (5, 3) plus noise, so matches are structured as real CNN features are.
"""
from __future__ import annotations

import argparse
import time

from _common import save_json


def pair(b: int, c: int, side: int, seed: int):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    base = F.avg_pool2d(torch.randn(b, c, side + 8, side + 8, generator=g), 3, 1, 1)
    src = base[:, :, 5:5 + side, 3:3 + side] + 0.1 * torch.randn(b, c, side, side, generator=g)
    return src, base[:, :, :side, :side].contiguous()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed-pairs", type=int, default=96)
    p.add_argument("--pm-pairs", type=int, default=8, help="PatchMatch on this many of the "
                   "seed pairs (CPU), scaled to the full batch")
    p.add_argument("--sizes", nargs="*", default=["128:64", "128:256", "256:64"])
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from colorplug.nnf import nearest_neighbor_field as nnf

    res: dict = {"threads": args.threads, "device": "cpu", "seed_workload": {}, "maps": {}}
    src, tgt = pair(args.seed_pairs, 64, 64, 0)
    t0 = time.perf_counter()
    ie, se = nnf(src, tgt, method="exact")
    res["seed_workload"]["exact_s"] = time.perf_counter() - t0
    k = args.pm_pairs
    t0 = time.perf_counter()
    ip, sp = nnf(src[:k], tgt[:k], method="patchmatch")
    tp = time.perf_counter() - t0
    res["seed_workload"]["patchmatch_s_scaled"] = tp * args.seed_pairs / k
    res["seed_workload"]["patchmatch_sim_ratio"] = float(sp.mean() / se[:k].mean())
    print(f"seed workload [{args.seed_pairs}, 64, 64, 64]: exact {res['seed_workload']['exact_s']:.2f} s; "
          f"patchmatch {tp:.2f} s for {k} pairs (x{args.seed_pairs / k:.0f} = "
          f"{res['seed_workload']['patchmatch_s_scaled']:.1f} s), similarity ratio "
          f"{res['seed_workload']['patchmatch_sim_ratio']:.4f}")
    for spec in args.sizes:
        side, c = (int(v) for v in spec.split(":"))
        s, t = pair(1, c, side, 1)
        row = {}
        t0 = time.perf_counter()
        ie, se = nnf(s, t, method="exact")
        row["exact_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ip, sp = nnf(s, t, method="patchmatch")
        row["patchmatch_s"] = time.perf_counter() - t0
        row["sim_ratio"] = float(sp.mean() / se.mean())
        row["exact_hit_rate"] = float((ip == ie).all(-1).float().mean())
        res["maps"][f"{side}x{side}xC{c}"] = row
        print(f"{side}x{side} C={c}: exact {row['exact_s']:.2f} s, patchmatch "
              f"{row['patchmatch_s']:.2f} s, similarity ratio {row['sim_ratio']:.4f}, "
              f"exact-hit rate {row['exact_hit_rate']:.3f}")
    save_json(args.out, res)


if __name__ == "__main__":
    main()
