"""Does a backend's confidence say where its colours are right? From a colour_eval run made
with --confidence: per backend, the Spearman correlation over photos of the mean confidence
with the PSNR gained over gray, and the mean gain of the more / less confident half.

    python benchmarks/confidence_relation.py benchmarks/results/colour_test_confidence
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr


def relation(metrics_csv: Path) -> dict[str, dict[str, float]]:
    rows = list(csv.DictReader(metrics_csv.open()))
    gray = {r["image"]: float(r["psnr"]) for r in rows if r["backend"] == "gray"}
    out = {}
    for backend in dict.fromkeys(r["backend"] for r in rows):
        rs = [r for r in rows if r["backend"] == backend and r["confidence_mean"] not in ("", "nan")]
        if not rs:
            continue
        gain = np.array([float(r["psnr"]) - gray[r["image"]] for r in rs])
        conf = np.array([float(r["confidence_mean"]) for r in rs])
        rho, p = spearmanr(conf, gain)
        upper = conf >= np.median(conf)
        out[backend] = {"photos": len(rs), "spearman": float(rho), "p_value": float(p),
                        "gain_more_confident_half": float(gain[upper].mean()),
                        "gain_less_confident_half": float(gain[~upper].mean())}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path)
    args = p.parse_args(argv)
    result = relation(args.results / "metrics.csv")
    (args.results / "relation.json").write_text(json.dumps(result, indent=1) + "\n")
    for backend, r in result.items():
        print(f"{backend:<26} rho {r['spearman']:+.2f} (p {r['p_value']:.2f})  gain vs gray: "
              f"more confident half {r['gain_more_confident_half']:+.2f} dB, less "
              f"{r['gain_less_confident_half']:+.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
