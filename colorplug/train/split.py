"""Fixed train / val / test splits of the training photos, so evaluation stays honest.

Rule (``photos_v1``): *test* holds out whole source packages (photos of one package are
alike, and a retrieval method would find a test photo's siblings in its gallery); *val* is a
stable hash of the file name over the rest. Val picks epochs and checkpoints; test only
reports. The file lists live in ``splits/NAME.json`` beside this module, built once from
fetch_photos' ``manifest.csv`` by ``python -m colorplug.train.split manifest.csv``.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError

SPLITS_DIR = Path(__file__).with_name("splits")
PARTS = ("train", "val", "test")
#: photos_v1's test packages: 74 of 460 photos (16 %), three packages of other styles
#: (Scratch's sprites backdrops, MATE's and Plasma's wallpapers) than the GCompris majority.
TEST_PACKAGES_V1 = ("scratch", "mate-backgrounds", "plasma-workspace-wallpapers")
VAL_FRACTION_V1 = 0.1


def name_bucket(name: str) -> float:
    """A file name's stable position in [0, 1] (SHA-1 of the name; the content's hash
    changes with MAX_SIDE, the name does not)."""
    return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


@dataclass(frozen=True)
class Split:
    """Which part each photo (by file name) belongs to, with its package and licence."""

    name: str
    part_of: dict[str, str]
    package: dict[str, str]
    licence: dict[str, str]

    def names(self, part: str) -> list[str]:
        check_part(part)
        return sorted(n for n, p in self.part_of.items() if p == part)

    def select(self, paths: Iterable[Path], part: str) -> list[Path]:
        """The paths whose file names are in `part`, in the order given."""
        check_part(part)
        return [Path(p) for p in paths if self.part_of.get(Path(p).name) == part]

    def unknown(self, paths: Iterable[Path]) -> list[Path]:
        """Paths the split does not list (not used for training or evaluation)."""
        return [Path(p) for p in paths if Path(p).name not in self.part_of]


def check_part(part: str) -> None:
    if part not in PARTS:
        raise InputError(f"split part must be one of {', '.join(PARTS)}; got {part!r}")


def build_split(manifest: str | Path, *, name: str = "photos_v1",
                test_packages: Sequence[str] = TEST_PACKAGES_V1,
                val_fraction: float = VAL_FRACTION_V1) -> Split:
    """The split of the photos a fetch_photos manifest lists, by the rule above."""
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"file", "package", "licence"} <= set(rows[0]):
        raise InputError(f"{manifest} is not a fetch_photos manifest (columns file, package, "
                         "licence)")
    missing = set(test_packages) - {r["package"] for r in rows}
    if missing:
        raise InputError(f"test packages not in {manifest}: {', '.join(sorted(missing))}")
    part_of = {}
    for r in rows:
        if r["package"] in test_packages:
            part_of[r["file"]] = "test"
        else:
            part_of[r["file"]] = "val" if name_bucket(r["file"]) < val_fraction else "train"
    return Split(name, part_of, {r["file"]: r["package"] for r in rows},
                 {r["file"]: r["licence"] for r in rows})


def save_split(split: Split, path: str | Path) -> None:
    photos = {n: {"part": split.part_of[n], "package": split.package[n],
                  "licence": split.licence[n]} for n in sorted(split.part_of)}
    counts = {p: sum(1 for v in split.part_of.values() if v == p) for p in PARTS}
    doc = {"name": split.name,
           "rule": f"test: whole packages {', '.join(TEST_PACKAGES_V1)}; val: SHA-1 of the "
                   f"file name < {VAL_FRACTION_V1} of the rest; train: the others",
           "counts": counts, "photos": photos}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def load_split(name_or_path: str | Path) -> Split:
    """A split shipped by name (``photos_v1``) or a JSON file of the same form."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SPLITS_DIR / f"{name_or_path}.json"
    if not path.is_file():
        shipped = sorted(p.stem for p in SPLITS_DIR.glob("*.json"))
        raise InputError(f"unknown split {str(name_or_path)!r}; shipped splits: "
                         f"{', '.join(shipped) or 'none'} (or give a split JSON file)")
    try:
        doc = json.loads(path.read_text())
        photos = doc["photos"]
        return Split(doc["name"], {n: v["part"] for n, v in photos.items()},
                     {n: v["package"] for n, v in photos.items()},
                     {n: v["licence"] for n, v in photos.items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"split file {path} is broken ({exc})") from None


def parse_split_spec(spec: str) -> tuple[Split, str]:
    """``NAME:PART`` (e.g. ``photos_v1:val``) -> (split, part)."""
    name, sep, part = spec.rpartition(":")
    if not sep or not name:
        raise InputError(f"--split takes NAME:PART (e.g. photos_v1:val); got {spec!r}")
    check_part(part)
    return load_split(name), part


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m colorplug.train.split",
                                description="(Re)build a split file from a photos manifest.")
    p.add_argument("manifest")
    p.add_argument("--name", default="photos_v1")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    split = build_split(args.manifest, name=args.name)
    out = args.out or SPLITS_DIR / f"{args.name}.json"
    save_split(split, out)
    print(f"{out}: " + ", ".join(f"{p} {len(split.names(p))}" for p in PARTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
