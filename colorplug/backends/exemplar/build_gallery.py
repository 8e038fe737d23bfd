"""Build the default gallery of `exemplar` (references when none is given): JPEG thumbnails
(longest side <= 256, quality 85) of a fixed split's TRAIN photos under permissive licences
only, and SOURCES.csv listing each file's source package, version, path and licence.

    python -m colorplug.backends.exemplar.build_gallery --data /work/photos512 \
        --split photos_v1 --out colorplug/backends/exemplar/gallery
    python -m colorplug.backends.exemplar.build_gallery --index-only   # after new weights

Building the package's own gallery also writes its index (``index.npz``: the descriptors of
the default weights, so first use computes nothing); ``--index-only`` rewrites just that.

Permissive: public domain, CC0, CC-BY (not -SA, -NC, -ND), BSD, MIT, Apache. Everything else
(GPL, LGPL, CC-BY-SA, non-commercial, GFDL, unknown or unstated) is left out, and so is a
package-wide licence whose images "carry no per-file statement" (OpenCV's samples: photos
of people and test images whose authors never licensed them as Apache/BSD).
"""
from __future__ import annotations

import argparse
import csv
import io
import re
from pathlib import Path

ACCEPT = ("public-domain", "cc0", "cc-by-", "bsd", "mit", "apache")
REJECT_TOKENS = {"gpl", "lgpl", "lgplv3", "sa", "nc", "nd", "gfdl", "unknown", "no"}


def permissive(licence: str) -> bool:
    """Whether a manifest licence allows shipping a thumbnail with the package."""
    low = licence.strip().lower()
    tokens = set(re.split(r"[^a-z0-9]+", low))
    if tokens & REJECT_TOKENS or any(t.startswith(("gpl", "lgpl", "gfdl")) for t in tokens):
        return False
    return low.startswith(ACCEPT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="folder of the photos with manifest.csv")
    p.add_argument("--split", default="photos_v1")
    p.add_argument("--out", help="gallery folder to write")
    p.add_argument("--index-only", action="store_true",
                   help="only rewrite the shipped gallery's index for the default weights")
    p.add_argument("--side", type=int, default=256)
    p.add_argument("--quality", type=int, default=85)
    args = p.parse_args(argv)
    if args.index_only:
        write_default_index()
        return 0
    if not (args.data and args.out):
        p.error("--data and --out are needed (or --index-only)")
    from PIL import Image

    from ...files import write_bytes_atomic
    from ...train.split import load_split

    split = load_split(args.split)
    data, out = Path(args.data), Path(args.out)
    with open(data / "manifest.csv", newline="") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh)}
    train = [n for n in split.names("train") if n in rows]
    chosen = [n for n in train if permissive(rows[n]["licence"])]
    out.mkdir(parents=True, exist_ok=True)
    sources = io.StringIO()
    writer = csv.writer(sources, lineterminator="\n")
    writer.writerow(["file", "package", "version", "source_path", "licence"])
    total = 0
    for name in chosen:
        img = Image.open(data / name).convert("RGB")
        img.thumbnail((args.side, args.side), Image.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=args.quality, optimize=True)
        thumb = Path(name).stem + ".jpg"
        write_bytes_atomic(out / thumb, buf.getvalue(), overwrite=True)
        total += len(buf.getvalue())
        r = rows[name]
        writer.writerow([thumb, r["package"], r["version"], r["source_path"], r["licence"]])
    write_bytes_atomic(out / "SOURCES.csv", sources.getvalue().encode(), overwrite=True)
    print(f"{len(chosen)} of {len(train)} train photos qualify; {total / 1e6:.2f} MB of "
          f"thumbnails in {out}")
    from .retrieval import DEFAULT_GALLERY

    if out.resolve() == DEFAULT_GALLERY.resolve():
        write_default_index()
    return 0


def write_default_index() -> None:
    """Compute the default gallery's descriptors with the default weights and store them
    beside the photos (`retrieval.write_shipped_index`)."""
    from .colorizer import ExemplarColorizer
    from .retrieval import write_shipped_index

    colorizer = ExemplarColorizer(device="cpu", refine=False)  # descriptors need no colour net
    index = colorizer.index()
    path = write_shipped_index(index, colorizer.index_weights_sha(), colorizer.working_size)
    print(f"index of {len(index.files)} gallery photos written to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
