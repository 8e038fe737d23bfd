"""Copy trained weights into the package with what val chose recorded in their metadata.

    python benchmarks/ship_weights.py RUN.safetensors colorplug/weights/NAME.safetensors \
        --config saturation=2.2 --selection '{"on": "photos_v1:val", ...}' \
        [--data-note "..."] [--training-note "..."]

The tensors are copied unchanged (float16); `--config KEY=VALUE` sets a decoding default in
the metadata's config (e.g. the saturation val chose); `--selection` records the rule, the
choice and the result file behind it; the package's weights manifest gets the new SHA-256.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorplug import weights as wts  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--selection", default=None, help="JSON object: how val chose")
    p.add_argument("--data-note", default=None, help="replaces training.data (local paths)")
    p.add_argument("--training-note", default=None, help="stored as training.note")
    args = p.parse_args()
    from safetensors.torch import load_file

    state = load_file(args.source)
    meta = wts.read_metadata(args.source)
    for item in args.config:
        key, _, value = item.partition("=")
        if key not in meta.get("config", {}):
            p.error(f"--config {key}: not a config key of these weights "
                    f"({', '.join(meta.get('config', {}))})")
        meta["config"][key] = json.loads(value)
    if args.selection:
        meta["selection"] = json.loads(args.selection)
    if args.data_note:
        meta.setdefault("training", {})["data"] = [args.data_note]
    if args.training_note:
        meta.setdefault("training", {})["note"] = args.training_note
    dest = Path(args.dest)
    digest = wts.save(dest, state, meta, half=True)
    Path(str(dest) + ".sha256").unlink(missing_ok=True)  # the package keeps a manifest
    wts.update_manifest(dest.parent, dest.name)
    print(f"{dest} ({dest.stat().st_size / 1e6:.1f} MB) sha256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
