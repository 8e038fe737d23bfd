"""fusion colorize time on CPU: 1 MP and 4 MP with the default weights and the earlier
width-0.25 v2 beside them, and the speed of untrained width variants (0.25 / 0.5 / 1.0) at
the same working size, side by side in one run.

    python benchmarks/fusion.py [--threads 2] [--out benchmarks/results/fusion_cpu.json]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import save_json, timed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import colorplug
    from colorplug import weights as wts
    from colorplug.backends.fusion.model import FusionConfig, FusionNet

    from colorplug.backends.fusion.colorizer import FusionWeights

    res: dict = {"threads": args.threads, "default": {}, "split_v2": {},
                 "widths_untrained": {}}
    for key, spec in (("default", FusionWeights.DEFAULT), ("split_v2",
                                                          FusionWeights.PHOTOS_SPLIT_V2)):
        c = colorplug.get("fusion", weights=spec, device="cpu")
        res[key]["weights"] = spec.spec.filename
        res[key]["width"] = c.model.cfg.width
        for label, shape in (("1MP", (1024, 1024)), ("4MP", (2048, 2048))):
            gray = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
            res[key][label] = timed(lambda: c.colorize(gray), args.reps)['median']
            print(f"fusion ({spec.spec.filename}, width {c.model.cfg.width}) {label}: "
                  f"{res[key][label]:.3f} s")
    gray = np.random.default_rng(0).integers(0, 256, (1024, 1024), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as d:
        for width in (0.25, 0.5, 1.0):
            net = FusionNet(FusionConfig(width=width))
            path = Path(d) / f"w{width}.safetensors"
            wts.save(path, net.state_dict(), {"config": net.cfg.to_dict()})
            cw = colorplug.get("fusion", weights=path, device="cpu")
            res["widths_untrained"][str(width)] = timed(lambda: cw.colorize(gray), args.reps)['median']
            print(f"width {width}: 1MP {res['widths_untrained'][str(width)]:.3f} s")
    save_json(args.out, res)


if __name__ == "__main__":
    main()
