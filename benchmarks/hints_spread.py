"""Choose on val how `guided` spreads its hints' corrections (issue 30 item 5).

`guided` can move its network's a*b* to agree with every hint exactly and spread each
hint's correction edge-aware over the image (colorplug.propagation.spread). This sweeps
that step's affinity width (sigma) and fade (decay), and no spreading, with the simulated
hints protocol of benchmarks/hints_curve.py at k = 1, 5, 10, 20 on photos_v1:val. The rule,
fixed before measuring: the configuration with the highest mean PSNR over those k wins;
test is not read here (benchmarks/hints_curve.py reports it).

    python benchmarks/hints_spread.py --data PHOTOS --out benchmarks/results/hints_spread_val.json
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

KS = (1, 5, 10, 20)
SIGMAS = (0.05,)
DECAYS = (1e-4, 1e-3, 1e-2)


def main() -> int:
    import torch

    import colorplug
    from colorplug.weights import sha256_file

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="photos_v1")
    p.add_argument("--max-side", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    photos = ev.load_photos(a.data, names=set(load_split(a.split).names("val")),
                            max_side=a.max_side)
    specs = ["no-spread=guided?spread=false"] + [
        f"spread-s{s:g}-d{d:g}=guided?spread_sigma={s}&spread_decay={d}"
        for s in SIGMAS for d in DECAYS]
    result = {"split": f"{a.split}:val", "images": len(photos), "max_side": a.max_side,
              "seed": a.seed, "command": " ".join(sys.argv),
              "weights": {"guided": sha256_file(
                  colorplug.get("guided", device="cpu").metadata["weights_file"])},
              "rule": "highest mean PSNR over k = 1, 5, 10, 20", "curve": {}}
    for k in KS:
        _rows, summary, _ = ev.evaluate(specs, photos, device="cpu",
                                        simulated_hint_points=k, hints_seed=a.seed)
        result["curve"][str(k)] = {
            label: {key: round(float(s[key]), 3) for key in ("psnr", "delta_e", "cf")}
            for label, s in summary.items()}
        print(k, {lbl: round(s["psnr"], 2) for lbl, s in summary.items()}, flush=True)
    labels = [s.split("=")[0] for s in specs]
    mean = {lbl: sum(result["curve"][str(k)][lbl]["psnr"] for k in KS) / len(KS)
            for lbl in labels}
    result["mean_psnr"] = {k: round(v, 3) for k, v in mean.items()}
    result["selected"] = max(mean, key=mean.get)
    print("selected:", result["selected"], result["mean_psnr"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
