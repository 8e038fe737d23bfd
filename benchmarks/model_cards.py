"""Write the model cards' result tables from the committed result files.

Every number in a card's generated block comes from a summary.json under
benchmarks/results/ (written by benchmarks/colour_eval.py); rerun this after new results:

    python benchmarks/model_cards.py            # rewrites the blocks in docs/
    python benchmarks/model_cards.py --check    # exit 1 if a card is out of date, or a result
                                                # labelled "(default)" was made with weights
                                                # that are no longer the default (CI)

A block is the text between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
NOT_HELD_OUT = ("-v1",)  # configurations whose weights saw test photos (trained before the split)


def table(summary_file: Path, rows: list[str] | None = None, note_selected: bool = True) -> str:
    doc = json.loads(summary_file.read_text())
    summary = doc["summary"]
    gray = summary["gray"]["psnr"]
    selected = doc.get("selected", {}).get("config")
    # the share of pixels with confident colour, for tables measured with --confidence
    confident = any("confident_share" in s for s in summary.values())
    lines = ["| configuration | PSNR (dB) | vs gray | SSIM | CF | ΔCF | ΔE00 | goal |"
             + (" confidence ≥ 0.5 |" if confident else ""),
             "| --- | --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if confident else "")]
    for name in rows or list(summary):
        if name not in summary:
            raise SystemExit(f"{summary_file}: no configuration {name!r}")
        s = summary[name]
        goal = "—" if name == "gray" else \
            ("met" if s["psnr"] >= gray and s["delta_cf"] <= 8 else "missed")
        label = name + (" *(selected on val)*" if note_selected and name == selected else "")
        if any(tag in name for tag in NOT_HELD_OUT) and "test" in doc["meta"]["split"]:
            label += " †"
        lines.append(f"| {label} | {s['psnr']:.2f} | {s['psnr'] - gray:+.2f} | {s['ssim']:.3f} "
                     f"| {s['cf']:.1f} | {s['delta_cf']:.1f} | {s['delta_e']:.2f} | {goal} |"
                     + ((f" {100 * s['confident_share']:.0f} % |" if "confident_share" in s else " — |")
                        if confident else ""))
    meta = doc["meta"]
    truth_cf = next(iter(summary.values()))["cf_truth"]
    lines.append("")
    part = meta["split"].rpartition(":")[2]
    folder = summary_file.parent.relative_to(ROOT).as_posix()
    scripts = [s for s in sorted((ROOT / "benchmarks").glob(f"colour_eval_{part}*.sh"))
               if re.search(rf"{re.escape(folder)}\b(?!_)", s.read_text())]
    how = f"`bash {scripts[0].relative_to(ROOT)}`" if scripts else f"`{meta['command']}`"
    lines.append(f"{meta['split']}: {summary['gray']['images']} photos, longest side "
                 f"{meta['max_side']}, CF of the truth {truth_cf:.1f}. Reproduce: {how} "
                 f"(the exact command is in `summary.json`); per-photo rows in "
                 f"`{summary_file.parent.relative_to(ROOT)}/metrics.csv`.")
    if meta.get("weights_sha256"):
        lines.append("Weights SHA-256: " + "; ".join(
            f"{label} `{sha[:12]}`" for label, sha in meta["weights_sha256"].items() if sha) + ".")
    if "test" in meta["split"] and any(any(t in n for t in NOT_HELD_OUT) for n in summary):
        lines.append("† weights trained before the split existed: their training photos include "
                     "this test part, so these rows are optimistic.")
    return "\n".join(lines)


def finetune_table(result_file: Path) -> str:
    """The fine-tuning benchmark (benchmarks/finetune.py): one table per domain."""
    doc = json.loads(result_file.read_text())
    out = []
    for domain in ("scratch", "histology"):
        if domain not in doc:
            continue
        d = doc[domain]
        rows = d["rows"]
        base = rows["shipped default"]
        out += [f"**{domain}** ({d['train_images']} training images, {d['heldout_images']} "
                "held out):", "",
                "| weights | PSNR (dB) | vs shipped | ΔE00 | ΔCF | kept: epoch, step | val images | SHA-256 |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label, r in rows.items():
            kept = (f"{r['kept_epoch']}, {r['steps_when_kept']}" if r.get("kept_epoch")
                    is not None else "—")
            out.append(f"| {label} | {r['psnr']:.2f} | {r['psnr'] - base['psnr']:+.2f} "
                       f"| {r['delta_e']:.2f} | {r['delta_cf']:.1f} | {kept} "
                       f"| {r.get('val_images') or '—'} | `{r['weights_sha256'][:12]}` |")
        out.append("")
    m = doc["machine"]
    out.append(f"CPU, {m['threads']} threads, torch {m['torch']}. Reproduce: `python "
               f"benchmarks/finetune.py --photos PHOTOS_DIR` (results: "
               f"`{result_file.relative_to(ROOT)}`).")
    return "\n".join(out)


def hints_table(result_file: Path) -> str:
    """The hints curve (benchmarks/hints_curve.py): PSNR (ΔE00) per number of hints."""
    doc = json.loads(result_file.read_text())
    curve = doc["curve"]
    ks = list(curve)
    labels = ["gray", "guided", "scribble", "default"]
    lines = ["| backend | " + " | ".join(f"k = {k}" for k in ks) + " |",
             "| --- |" + " --- |" * len(ks)]
    for label in labels:
        cells = []
        for k in ks:
            s = curve[k].get(label)
            cells.append(f"{s['psnr']:.2f} ({s['delta_e']:.2f})" if s else "—")
        name = f"default (`{doc['default_backend']}`)" if label == "default" else f"`{label}`"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"PSNR in dB (ΔE00) on {doc['split']}: {doc['images']} photos, longest side "
              f"{doc['max_side']}, hints seed {doc['seed']}; `guided` weights SHA-256 "
              f"`{doc['weights']['guided'][:12]}`, default `{doc['weights']['default'][:12]}`. "
              f"Reproduce: `{doc['command']}` (results: `{result_file.relative_to(ROOT)}`)."]
    return "\n".join(lines)


def steering_sentence(result_file: Path) -> str:
    """Reference steering per fusion weights file (benchmarks/fusion_steering.py)."""
    doc = json.loads(result_file.read_text())
    parts = [f"{name.removesuffix('.safetensors')} (SHA-256 `{row['sha256'][:12]}`) "
             f"{row['mean_delta_ab']:.2f}" for name, row in doc["weights"].items()]
    return ("Reference steering: the same target colorized with a portrait and with a smooth "
            "sky-like gradient as references differs by a mean |Δa\\*b\\*| of "
            + ", ".join(parts) + f" (results: `{result_file.relative_to(ROOT)}`; reproduce: "
            f"`{doc['command']}`).")


def blocks() -> dict[str, str]:
    """Block name -> generated markdown, for every result folder that exists."""
    out = {}
    for folder in sorted([*RESULTS.glob("colour_*"), *RESULTS.glob("default_*")]):
        f = folder / "summary.json"
        if f.is_file():
            out[folder.name] = table(f)
    for part in ("val", "test"):
        if (RESULTS / f"hints_{part}.json").is_file():
            out[f"hints_{part}"] = hints_table(RESULTS / f"hints_{part}.json")
    if (RESULTS / "fusion_steering.json").is_file():
        out["fusion_steering"] = steering_sentence(RESULTS / "fusion_steering.json")
    if (RESULTS / "finetune.json").is_file():
        out["finetune"] = finetune_table(RESULTS / "finetune.json")
    return out


def shipped_default_sha256(backend: str) -> str:
    """The SHA-256 of the weights a backend loads by default today (from the package)."""
    import colorplug
    from colorplug.weights import sha256_file

    return sha256_file(colorplug.get(backend, device="cpu").metadata["weights_file"])


def stale_results() -> list[str]:
    """Result files whose rows labelled as a default were made with other weights than the
    default those backends load today (their tables would describe weights no one runs)."""
    sys.path.insert(0, str(ROOT))
    from colorplug.evaluate import parse_backend_spec

    claims = []  # (result file, label, backend, sha256 it was made with)
    for f in sorted(RESULTS.glob("*/summary.json")):
        meta = json.loads(f.read_text())["meta"]
        for spec in meta.get("configs", []):
            label, name, options = parse_backend_spec(spec)
            sha = meta.get("weights_sha256", {}).get(label)
            if "(default)" in label and "weights" not in options and sha:
                claims.append((f, label, name, sha))
    for f in sorted(RESULTS.glob("hints_*.json")):
        doc = json.loads(f.read_text())
        if "default_backend" in doc:
            claims.append((f, "guided", "guided", doc["weights"]["guided"]))
            claims.append((f, "default", doc["default_backend"], doc["weights"]["default"]))
    today: dict[str, str] = {}
    stale = []
    for f, label, name, sha in claims:
        if name not in today:
            today[name] = shipped_default_sha256(name)
        if sha != today[name]:
            stale.append(f"{f.relative_to(ROOT)}: {label!r} was made with {name} weights "
                         f"{sha[:12]}, the default today is {today[name][:12]}")
    return stale


def rewrite(text: str, generated: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in generated:
            raise SystemExit(f"no results for generated block {name!r}")
        return f"<!-- generated: {name} -->\n{generated[name]}\n<!-- end generated -->"

    return re.sub(r"<!-- generated: (\S+) -->.*?<!-- end generated -->", sub, text, flags=re.S)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    generated = blocks()
    stale = []
    for md in sorted(DOCS.rglob("*.md")):
        text = md.read_text()
        new = rewrite(text, generated)
        if new != text:
            stale.append(md)
            if not args.check:
                md.write_text(new)
    for md in stale:
        print(("out of date: " if args.check else "rewrote ") + str(md.relative_to(ROOT)))
    old_weights = stale_results() if args.check else []
    for line in old_weights:
        print("made with other weights than today's default: " + line)
    return 1 if args.check and (stale or old_weights) else 0


if __name__ == "__main__":
    sys.exit(main())
