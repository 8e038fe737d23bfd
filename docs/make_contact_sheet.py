"""Make docs/img/contact_sheet_test.jpg: 12 photos of the test part (never used to choose
anything; the models trained on train only never saw them, exemplar's v1 networks,
labelled v1, did), gray input | each built-in automatic backend at its shipped default |
truth; and its attribution file. Run after a default changes:

    python docs/make_contact_sheet.py --data photos512

The photos are the first 12 of the test package `scratch` by SHA-1 of the file name (a fixed
rule, not a pick): the sheet holds the photos, so it takes them from one package under one
licence (Scratch's backdrops, CC-BY-SA-3.0), and the sheet is shared under that licence
with the attribution written beside it.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import colorplug  # noqa: E402
from colorplug import evaluate as ev  # noqa: E402
from colorplug.files import write_bytes_atomic  # noqa: E402
from colorplug.image import write_image  # noqa: E402
from colorplug.train.split import load_split  # noqa: E402

OUT = Path(__file__).with_name("img") / "contact_sheet_test.jpg"
#: column label -> the built-in backend that colorizes without a reference or hints, at its
#: defaults
#: (v1 = weights trained before the split, on photos that include these; the sheet's
#: bitmap font has no †)
BACKENDS = {"autoencoder": "autoencoder", "fusion (default)": "fusion", "cgan": "cgan",
            "exemplar (auto, v1)": "exemplar"}


def chosen(split: str, package: str, rows: int) -> list[str]:
    """The first `rows` test photos of `package` by SHA-1 of the file name."""
    s = load_split(split)
    names = [n for n, part in s.part_of.items() if part == "test" and s.package[n] == package]
    if len(names) < rows:
        raise SystemExit(f"split {split}: only {len(names)} test photos of {package!r}")
    return sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())[:rows]


#: the licence's text, which CC-BY-SA asks to name with every copy
LICENCE_URL = {"CC-BY-SA-3.0": "https://creativecommons.org/licenses/by-sa/3.0/"}


def attribution(data: Path, names: list[str], licence: str, copyright: str) -> str:
    """Markdown naming each photo's source (package, version, path), holder and licence."""
    manifest = {r["file"]: r for r in csv.DictReader((data / "manifest.csv").open())}
    lines = [f"# Attribution of `{OUT.name}`", "",
             f"The photos in the sheet (truth column; the other columns are derived from them) "
             f"are from the Debian package listed per photo, {copyright}, licensed {licence} "
             f"({LICENCE_URL.get(licence, 'see the package')}). Changes: reduced to 256 "
             f"pixels, converted to gray (first column) and colorized by each backend. The "
             f"sheet as a whole is shared under the same licence. Made by "
             f"`docs/make_contact_sheet.py`.",
             "", "| row | file | package | version | path in the package | licence |",
             "| --- | --- | --- | --- | --- | --- |"]
    for i, name in enumerate(names, 1):
        r = manifest[name]
        if r["licence"] != licence:
            raise SystemExit(f"{name}: licence {r['licence']!r}, not {licence!r}")
        lines.append(f"| {i} | {name} | {r['package']} | {r['version']} | "
                     f"{r['source_path']} | {r['licence']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="the photos (fetch_photos.sh)")
    p.add_argument("--split", default="photos_v1")
    p.add_argument("--package", default="scratch")
    p.add_argument("--licence", default="CC-BY-SA-3.0")
    p.add_argument("--copyright", default="Copyright (c) 2011 Massachusetts Institute of "
                   "Technology (the package's copyright file, Files: Media/*)")
    p.add_argument("--rows", type=int, default=12)
    p.add_argument("--cell", type=int, default=128)
    args = p.parse_args(argv)
    names = chosen(args.split, args.package, args.rows)
    photos = {n: a for n, a in ev.load_photos(args.data, names=set(names), max_side=256)}
    photos = [(n, photos[n]) for n in names]
    outputs = {}
    for label, backend in BACKENDS.items():
        c = colorplug.get(backend, device="cpu")
        outputs[label] = [c.colorize(ev.gray_input(truth)) for _, truth in photos]
        print(f"{label}: done", flush=True)
    sheet = ev.contact_sheet(photos, outputs, rows=args.rows, cell=args.cell)
    write_image(OUT, sheet, overwrite=True)
    write_bytes_atomic(OUT.with_suffix(".md"),
                       attribution(args.data, names, args.licence, args.copyright).encode(), overwrite=True)
    print(f"wrote {OUT} and {OUT.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
