"""Evaluate colour configurations on one part of the fixed split (issue 15's tables).

Val chooses (decoding temperature / saturation, the default backend); test only reports.
Each run writes RESULTS/<part>/metrics.{csv,json} (per photo and summary) and
summary.json (the table, the command, the selection when --select is given).

    python benchmarks/colour_eval.py --data photos512 --part val --select \
        --out benchmarks/results/colour_val
    python benchmarks/colour_eval.py --data photos512 --part test \
        --out benchmarks/results/colour_test --configs ...   # what val chose, + the table

A configuration is ``LABEL=BACKEND?option=value&...`` (as `colorplug eval --backend`), plus
``&gain=G``: the output's a*b* scaled by G after colorizing (L* kept), the "saturation knob"
the issue measures every model against.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorplug import color, evaluate as ev  # noqa: E402
from colorplug.train.split import load_split  # noqa: E402

GOAL_DELTA_CF = 8.0


def with_gain(rgb: np.ndarray, gain: float) -> np.ndarray:
    """Scale the chroma of an sRGB uint8 image by `gain`, keeping L* (gamut-mapped)."""
    lab = color.rgb_to_lab(rgb / 255.0)
    lab[..., 1:] *= gain
    return np.round(color.lab_to_rgb_in_gamut(lab) * 255).astype(np.uint8)


class Gained:
    """A colorizer whose outputs get `with_gain` (evaluation only)."""

    def __init__(self, inner, gain: float) -> None:
        self.inner, self.gain, self.info = inner, gain, inner.info

    def colorize(self, image, **kwargs):
        return with_gain(self.inner.colorize(image, **kwargs), self.gain)

    def confidence(self, image, **kwargs):
        return self.inner.confidence(image, **kwargs)


def confidence_of(colorizer, gray) -> dict[str, float]:
    """The backend's confidence statistics for one photo ({} where it has none)."""
    from colorplug.errors import InputError

    if not hasattr(colorizer, "confidence"):
        return {}
    try:
        return ev.confidence_stats(colorizer.confidence(gray))
    except InputError:
        return {}


#: Configuration label -> SHA-256 of the weights file it ran with (None: no weights), filled
#: by `run` and written into the results' meta.
WEIGHTS_SHA256: dict[str, str | None] = {}


def weights_sha256(colorizer) -> str | None:
    """The SHA-256 of the weights file a colorizer loaded (None for weightless backends)."""
    from colorplug.weights import sha256_file

    path = (getattr(colorizer, "metadata", None) or {}).get("weights_file")
    return sha256_file(path) if path else None


def run(configs: list[str], photos, device: str, with_confidence: bool = False,
        gray_method: str = "lstar"):
    """(rows, summary, outputs) of every configuration, through colorplug.evaluate."""
    import colorplug

    rows, outputs = [], {}
    for spec in configs:
        gain = 1.0
        if "gain=" in spec:
            head, _, tail = spec.rpartition("gain=")
            gain = float(tail.split("&")[0])
            spec = head.rstrip("&?")
        label, name, options = ev.parse_backend_spec(spec)
        if gain != 1.0:
            label = f"{label}x{gain:g}"
        colorizer = colorplug.get(name, device=device, **options)
        WEIGHTS_SHA256[label] = weights_sha256(colorizer)
        wrapped = Gained(colorizer, gain) if gain != 1.0 else colorizer
        r, o = _evaluate_one(label, wrapped, photos, with_confidence, gray_method)
        rows += r
        outputs.update(o)
        s = ev.summarize(r)[label]
        print(f"{label:<28} PSNR {s['psnr']:6.2f}  dCF {s['delta_cf']:6.2f}  "
              f"CF {s['cf']:6.2f}  dE {s['delta_e']:5.2f}"
              + (f"  confident {s['confident_share']:.3f}" if "confident_share" in s else ""), flush=True)
    return rows, ev.summarize(rows), outputs


def _evaluate_one(label: str, colorizer, photos, with_confidence: bool = False,
                  gray_method: str = "lstar"):
    rows, outputs = [], {label: []}
    for image_name, truth in photos:
        gray = ev.gray_input(truth, gray_method)
        t0 = time.perf_counter()
        out = colorizer.colorize(gray)
        seconds = time.perf_counter() - t0
        outputs[label].append(out)
        stats = confidence_of(colorizer, gray) if with_confidence else {}
        rows.append(ev.Row(label, image_name, ev.psnr(out, truth), ev.ssim(out, truth),
                           ev.colourfulness(out), ev.colourfulness(truth),
                           ev.delta_e2000(out, truth), seconds, **stats))
    return rows, outputs


def select(summary: dict, gray_label: str = "gray") -> tuple[str, str]:
    """The configuration the goal prefers, and why: PSNR >= gray's and dCF <= 8 (then the
    highest PSNR); else the lowest dCF among PSNR >= gray; else the highest PSNR."""
    gray = summary[gray_label]["psnr"]
    cands = {k: v for k, v in summary.items() if k != gray_label}
    both = {k: v for k, v in cands.items() if v["psnr"] >= gray and v["delta_cf"] <= GOAL_DELTA_CF}
    if both:
        best = max(both, key=lambda k: both[k]["psnr"])
        return best, "meets the goal (PSNR >= gray, dCF <= 8) with the highest PSNR"
    above = {k: v for k, v in cands.items() if v["psnr"] >= gray}
    if above:
        best = min(above, key=lambda k: above[k]["delta_cf"])
        return best, "no configuration meets both; lowest dCF among PSNR >= gray"
    best = max(cands, key=lambda k: cands[k]["psnr"])
    return best, "no configuration reaches gray's PSNR; the highest PSNR"


#: Issue 30's rule for the default, fixed before measuring: among the automatic
#: configurations whose val PSNR is at least gray's - 0.5 dB and whose CIEDE2000 is at most
#: gray's + 2.5, the most colourful one (a default that colours, without making photos
#: measurably worse than gray).
DEFAULT_RULE_PSNR_SLACK = 0.5
DEFAULT_RULE_DELTA_E_SLACK = 2.5


def select_default(summary: dict, ineligible: set[str] = frozenset(),
                   gray_label: str = "gray") -> tuple[str, str]:
    """The configuration issue 30's rule picks, and why (`ineligible`: weights that saw val)."""
    gray = summary[gray_label]
    passing = {k: v for k, v in summary.items()
               if k != gray_label and k not in ineligible
               and v["psnr"] >= gray["psnr"] - DEFAULT_RULE_PSNR_SLACK
               and v["delta_e"] <= gray["delta_e"] + DEFAULT_RULE_DELTA_E_SLACK}
    if not passing:
        return gray_label, "no configuration is within 0.5 dB and 2.5 dE00 of gray: gray"
    best = max(passing, key=lambda k: passing[k]["cf"])
    return best, (f"the highest CF ({passing[best]['cf']:.1f}) among the {len(passing)} "
                  f"eligible configurations with PSNR >= gray - {DEFAULT_RULE_PSNR_SLACK} dB "
                  f"and dE00 <= gray + {DEFAULT_RULE_DELTA_E_SLACK}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="photos_v1")
    p.add_argument("--part", choices=["val", "test"], required=True)
    p.add_argument("--configs", nargs="+", required=True)
    p.add_argument("--max-side", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--select", action="store_true", help="choose by the goal (val only)")
    p.add_argument("--rule", choices=["issue15", "default"], default="issue15",
                   help="what --select applies: issue 15's goal (PSNR >= gray, dCF <= 8) or "
                        "issue 30's rule for the default (the most colourful configuration "
                        "within 0.5 dB PSNR and 2.5 dE00 of gray)")
    p.add_argument("--ineligible", nargs="*", default=[],
                   help="labels --select must not pick (weights trained on this part)")
    p.add_argument("--gray", choices=sorted(ev.GRAY_METHODS), default="lstar",
                   help="how the gray input is made from the photo: its L* (default) or the "
                        "Rec. 601 / 709 luma most tools make")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--confidence", action="store_true",
                   help="also report each backend's per-pixel confidence where it has one (mean, "
                        "and the share of pixels >= 0.5: how much of an image gets confident "
                        "colour)")
    p.add_argument("--sheet-rows", type=int, default=0,
                   help="also write contact_sheet.png of this many photos (not committed: it "
                        "holds the photos)")
    args = p.parse_args(argv)
    if args.select and args.part != "val":
        p.error("--select chooses on val only; test only reports")
    import torch

    torch.set_num_threads(args.threads)
    names = set(load_split(args.split).names(args.part))
    photos = ev.load_photos(args.data, names=names, max_side=args.max_side)
    print(f"{len(photos)} {args.part} photos of split {args.split}", flush=True)
    labels = {ev.parse_backend_spec(c)[0] for c in args.configs}
    configs = args.configs if "gray" in labels else ["gray", *args.configs]
    rows, summary, outputs = run(configs, photos, args.device, args.confidence, args.gray)
    meta = {"split": f"{args.split}:{args.part}", "max_side": args.max_side,
            "gray": args.gray, "ineligible": args.ineligible, "weights_sha256": WEIGHTS_SHA256,
            "configs": configs, "command": "python benchmarks/colour_eval.py " +
            " ".join(argv if argv is not None else sys.argv[1:])}
    args.out.mkdir(parents=True, exist_ok=True)
    sheet = None
    if args.sheet_rows:
        sheet_outputs = {k: v[:args.sheet_rows] for k, v in outputs.items()}
        sheet = ev.contact_sheet(photos[:args.sheet_rows], sheet_outputs, rows=args.sheet_rows)
    ev.write_report(args.out, rows, summary, sheet, meta)
    result = {"meta": meta, "summary": summary}
    if args.select:
        if args.rule == "default":
            best, why = select_default(summary, set(args.ineligible))
        else:
            best, why = select(summary)
        result["selected"] = {"config": best, "why": why, "rule": args.rule}
        print(f"selected on {args.part}: {best} ({why})")
    (args.out / "summary.json").write_text(json.dumps(ev.json_safe(result), indent=1) + "\n")
    print(ev.format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
