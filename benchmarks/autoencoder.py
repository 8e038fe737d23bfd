"""Autoencoder colorize time (512², 1024², 4096²) and peak RSS at 8192², on CPU.

    python benchmarks/autoencoder.py [--threads 2] [--out benchmarks/results/autoencoder_cpu.json]

Not a test: numbers depend on the machine. Peak RSS is measured in a fresh subprocess and
reported beside a subprocess that does the same minus the colorize call (import + model).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys

from _common import save_json, timed

CHILD = """
import resource, sys, numpy as np, torch
torch.set_num_threads({threads})
import colorplug
c = colorplug.get("autoencoder", device="cpu")
gray = np.random.default_rng(0).integers(0, 256, ({side}, {side}), dtype=np.uint8)
if {run}:
    out = c.colorize(gray)
    assert out.shape == ({side}, {side}, 3)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(side: int, threads: int, run: bool) -> float:
    code = CHILD.format(side=side, threads=threads, run=run)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import colorplug

    c = colorplug.get("autoencoder", device="cpu")
    results: dict = {"machine": {"cpu_count": os.cpu_count(), "threads": args.threads,
                                 "platform": platform.platform(), "torch": torch.__version__},
                     "colorize_seconds": {}}
    for side, reps in ((512, 7), (1024, 5), (4096, 3)):
        gray = np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8)
        t = timed(lambda: c.colorize(gray), reps)
        results["colorize_seconds"][f"{side}x{side}"] = t
        print(f"{side}x{side}: median {t['median']:.3f} s (min {t['min']:.3f})")
    base = peak_rss_mb(8192, args.threads, False)
    peak = peak_rss_mb(8192, args.threads, True)
    results["peak_rss_mb_8192"] = {"with_colorize": peak, "import_and_model_only": base}
    print(f"8192x8192 peak RSS: {peak:.0f} MB (import + model alone: {base:.0f} MB)")
    save_json(args.out, results)


if __name__ == "__main__":
    main()
