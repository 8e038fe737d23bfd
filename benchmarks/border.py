"""The border artefact (issue 30 item 2): does the default keep the interior's chroma up to
the edge of full-size outputs?

For the val photos of split photos_v1 whose truth has colour up to the edge (the truth's
edge-band chroma within 10 % of the chroma just inside), the output's edge ratio: the mean
chroma of the outer 12 px over that of the next 24 px inside (1.0 = no band). Also the
default's mean PSNR and CIEDE2000 over all val photos (full size, longest side as fetched).

    python benchmarks/border.py --photos PHOTOS_DIR

Before/after a change to the default, run it on both commits (e.g. `git stash`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BAND = 12


def edge_ratio(rgb: np.ndarray) -> float:
    from colorplug import color

    lab = color.rgb_to_lab(rgb[..., :3] / 255.0)
    c = np.hypot(lab[..., 1], lab[..., 2])
    h, w = c.shape
    b = BAND
    edge = np.concatenate([c[:b].ravel(), c[-b:].ravel(), c[:, :b].ravel(), c[:, -b:].ravel()])
    inside = np.zeros_like(c, bool)
    inside[b:3 * b, b:w - b] = inside[h - 3 * b:h - b, b:w - b] = True
    inside[b:h - b, b:3 * b] = inside[b:h - b, w - 3 * b:w - b] = True
    return float(edge.mean() / max(c[inside].mean(), 1e-6))


def main() -> int:
    import torch

    import colorplug
    from colorplug.evaluate import delta_e2000, gray_input, psnr
    from colorplug.image import read_image
    from colorplug.train.split import load_split

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", required=True)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    names = load_split("photos_v1").names("val")
    default = colorplug.get(device="cpu")
    ratios, scores = [], []
    for name in names:
        truth = read_image(Path(a.photos) / name)[..., :3]
        out = default.colorize(gray_input(truth))
        scores.append((psnr(out, truth), delta_e2000(out, truth)))
        if 0.9 <= edge_ratio(truth) <= 1.1:
            ratios.append(edge_ratio(out))
    print(json.dumps({"photos": len(names), "colour_to_the_edge": len(ratios),
                      "edge_ratio_mean": round(float(np.mean(ratios)), 3),
                      "psnr": round(float(np.mean([s[0] for s in scores])), 3),
                      "delta_e": round(float(np.mean([s[1] for s in scores])), 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
