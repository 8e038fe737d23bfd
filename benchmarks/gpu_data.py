"""Copy a fixed split's train and val photos (never test) into a folder that travels to a
lent GPU machine, with labels.csv (file,package) for fusion's scene head.

    python benchmarks/gpu_data.py --data /work/photos384 --out .gpu
    (.gpu must be ignored by git: echo /.gpu/ >> .git/info/exclude)
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colorplug.train.split import load_split  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--split", default="photos_v1")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args()
    split = load_split(args.split)
    (args.out / "photos").mkdir(parents=True, exist_ok=True)
    rows = []
    for part in ("train", "val"):
        for name in split.names(part):
            if (args.data / name).is_file():
                shutil.copy2(args.data / name, args.out / "photos" / name)
                rows.append((name, split.package[name]))
    with open(args.out / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label"])
        writer.writerows(rows)
    print(f"{len(rows)} train+val photos of {split.name} in {args.out / 'photos'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
