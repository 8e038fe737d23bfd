"""How much a reference steers fusion's colours, per shipped weights file (docs/backends/fusion.md).

The same target (the test suite's synthetic photo, seed 3) colorized with two references of
different structure, a portrait (the astronaut sample) and a smooth sky-like gradient; the
score is the mean CIELAB chroma distance |Δa*b*| between the two outputs (0: the reference
changes nothing; the just-noticeable difference is about 2.3).

    python benchmarks/fusion_steering.py --out benchmarks/results/fusion_steering.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WEIGHTS = ("fusion_photos_w025_v1.safetensors", "fusion_photos_split_v2.safetensors",
           "fusion_photos_split_w04_v3.safetensors")


def main() -> int:
    import torch

    import colorplug
    from colorplug import color
    from colorplug.weights import sha256_file
    from tests.conftest import make_photo

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    target = (color.lightness_from_rgb(make_photo(3, (96, 128)) / 255.0) * 2.55).astype(np.uint8)
    portrait = colorplug.sample("astronaut_color")
    yy, xx = np.mgrid[0:128, 0:128]
    sky = np.stack([90 + xx // 4, 150 + yy // 3, 230 + 0 * xx], -1).clip(0, 255).astype(np.uint8)
    rows = {}
    for name in WEIGHTS:
        path = ROOT / "colorplug" / "weights" / name
        fusion = colorplug.get("fusion", device="cpu", weights=str(path))
        ab = [color.rgb_to_lab(fusion.colorize(target, reference=r) / 255.0)[..., 1:]
              for r in (portrait, sky)]
        rows[name] = {"sha256": sha256_file(path),
                      "mean_delta_ab": round(float(np.hypot(*np.moveaxis(ab[0] - ab[1], -1, 0)).mean()), 2)}
        print(name, rows[name], flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"command": "python benchmarks/fusion_steering.py --out "
                                 + str(a.out), "target": "tests.conftest.make_photo(3, (96, 128))",
                                 "weights": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
