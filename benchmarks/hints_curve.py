"""The hints curve (issue 30 item 5): PSNR and CIEDE2000 against the number of simulated
user hints, for the built-in `guided` model, colorplug-classic's `scribble` and gray, on
one part of the fixed split; `guided` and the default backend without hints too.

Hints follow Zhang et al. 2017's protocol (`colorplug.evaluate.simulated_hints`): k points
at uniformly random places carrying the truth's 5x5 mean colour, seeded per photo, the
same for every backend. Val picks (the checkpoint was chosen on val by the training run);
test only reports.

    python benchmarks/hints_curve.py --data PHOTOS --part val  --out benchmarks/results/hints_val.json
    python benchmarks/hints_curve.py --data PHOTOS --part test --out benchmarks/results/hints_test.json

Needs `pip install -e plugins/colorplug-classic` (scribble).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorplug import evaluate as ev  # noqa: E402
from colorplug.train.split import load_split  # noqa: E402

KS = (0, 1, 5, 10, 20)


def main() -> int:
    import torch

    import colorplug
    from colorplug.weights import sha256_file

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--part", choices=["val", "test"], required=True)
    p.add_argument("--split", default="photos_v1")
    p.add_argument("--max-side", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--guided-weights", default=None,
                   help="a candidate weights file for guided (default: the shipped one); val "
                        "compares candidates, test reports the one shipped")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    split = load_split(a.split)
    photos = ev.load_photos(a.data, names=set(split.names(a.part)), max_side=a.max_side)
    guided_spec = "guided" + (f"?weights={a.guided_weights}" if a.guided_weights else "")
    guided = colorplug.get("guided", device="cpu",
                           **({"weights": a.guided_weights} if a.guided_weights else {}))
    result = {"split": f"{a.split}:{a.part}", "images": len(photos), "max_side": a.max_side,
              "seed": a.seed, "weights": {
                  "guided": sha256_file(guided.metadata["weights_file"]),
                  "default": sha256_file(colorplug.get(device="cpu").metadata["weights_file"])},
              "default_backend": colorplug.default_backend(),
              "command": " ".join(sys.argv), "curve": {}}
    for k in KS:
        # scribble needs hints: from k = 1; the default backend takes none: at k = 0
        specs = ["gray", "guided=" + guided_spec] + (["default=" + colorplug.default_backend()] if k == 0
                                      else ["scribble"])
        _rows, summary, _ = ev.evaluate(specs, photos, device="cpu",
                                        simulated_hint_points=k, hints_seed=a.seed)
        result["curve"][str(k)] = {
            label: {key: round(float(s[key]), 3) for key in ("psnr", "delta_e", "cf", "delta_cf")}
            for label, s in summary.items()}
        print(k, {lbl: round(s["psnr"], 2) for lbl, s in summary.items()}, flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
