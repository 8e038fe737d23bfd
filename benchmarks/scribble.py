"""colorplug-classic: scribble (Levin et al.) solve time at 0.25 MP and 1 MP; transfer too.

    python benchmarks/scribble.py [--out benchmarks/results/classic_cpu.json]

Needs `pip install -e plugins/colorplug-classic`. Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import os

from _common import save_json, timed

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    import skimage.data
    from PIL import Image

    import colorplug
    from colorplug.evaluate import gray_input

    photo = Image.fromarray(skimage.data.astronaut())
    results: dict = {"cpu_count": os.cpu_count(), "scribble_seconds": {}, "transfer_seconds": {}}
    scribble = colorplug.get("scribble")
    transfer = colorplug.get("transfer")
    for side in (512, 1024):
        truth = np.asarray(photo.resize((side, side), Image.BICUBIC))
        gray = gray_input(truth)
        rng = np.random.default_rng(0)
        points = [(int(x), int(y), tuple(int(v) for v in truth[y, x]), side / 100)
                  for x, y in rng.integers(0, side, (24, 2))]
        for name, run in (("scribble", lambda: scribble.colorize(gray, hints=points)),
                          ("transfer", lambda: transfer.colorize(gray, reference=truth))):
            t = timed(run, args.reps, warmup=False)
            results[f"{name}_seconds"][f"{side}x{side}"] = t
            print(f"{name} {side}x{side}: median {t['median']:.2f} s")
    save_json(args.out, results)


if __name__ == "__main__":
    main()
