"""cgan colorize time at 1 MP: the shipped generator, any other trained generator given
with --weights, and untrained generator variants at their working sizes, side by side.

    python benchmarks/cgan.py [--device cpu] [--threads 2] [--weights LABEL=PATH ...]
                              [--out benchmarks/results/cgan_cpu.json]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import save_json, timed

VARIANTS = {  # label: (GeneratorConfig kwargs)
    "unet_ngf32_128": {"kind": "unet", "ngf": 32, "working_size": 128},
    "unet_ngf64_256": {"kind": "unet", "ngf": 64, "working_size": 256},
    "resnet18_128": {"kind": "resnet", "arch": "resnet18", "working_size": 128},
    "resnet50_224": {"kind": "resnet", "arch": "resnet50", "working_size": 224},
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--weights", nargs="*", default=[], help="LABEL=PATH of trained generators")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import colorplug
    from colorplug import weights as wts
    from colorplug.backends.cgan.model import GeneratorConfig, build_generator

    gray = np.random.default_rng(0).integers(0, 256, (1024, 1024), dtype=np.uint8)
    res: dict = {"threads": args.threads, "device": args.device, "1MP_s": {}}

    def bench(label: str, colorizer) -> None:
        res["1MP_s"][label] = timed(lambda: colorizer.colorize(gray), args.reps)["median"]
        print(f"{label}: 1 MP {res['1MP_s'][label]:.3f} s")

    bench("shipped", colorplug.get("cgan", device=args.device))
    for item in args.weights:
        label, _, path = item.partition("=")
        bench(label, colorplug.get("cgan", weights=path, device=args.device))
    with tempfile.TemporaryDirectory() as d:
        for label, kw in VARIANTS.items():
            cfg = GeneratorConfig(**kw)
            path = Path(d) / f"{label}.safetensors"
            wts.save(path, build_generator(cfg).state_dict(), {"config": cfg.to_dict()})
            bench(f"untrained_{label}", colorplug.get("cgan", weights=path, device=args.device))
    save_json(args.out, res)


if __name__ == "__main__":
    main()
