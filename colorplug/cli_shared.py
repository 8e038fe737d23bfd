"""What the colorize commands share (plain images, video, dask): error output, the
``-b NAME?k=v`` and ``--intensity-range`` flags, decoding an input, colorizing a stack.
Imported by `colorplug.cli`, `colorplug.dask_cli` and `colorplug.video.cli`, which do not
import each other's helpers."""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

import numpy as np

from .errors import ColorplugError


def err(msg: str) -> None:
    print(f"colorplug: error: {msg}", file=sys.stderr)


def parse_range(text: str | None):
    if text is None:
        return None
    if text in ("dtype", "percentile"):
        return text
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise ColorplugError(f"--intensity-range must be LO,HI, 'dtype' or 'percentile'; "
                             f"got {text!r}") from None
    return (lo, hi)


def backend_and_options(spec: str | None) -> tuple[str | None, dict]:
    """``-b NAME`` or ``-b "NAME?key=value&..."`` (as ``colorplug eval --backend``)."""
    if spec is None or "?" not in spec:
        return spec, {}
    from .evaluate import parse_backend_spec

    _, name, options = parse_backend_spec(spec)
    return name, options


def load_input(item, args: argparse.Namespace):
    """Decode one input: an image array, or the planes of a DICOM / OME-TIFF file."""
    from .errors import InputError
    from .image import medical, read_image

    src = item.source
    if medical.is_dicom(src):
        return medical.read_dicom(src, allow_huge=args.allow_huge_images)
    if medical.is_ome_tiff(src):
        return medical.read_ome_tiff(src, allow_huge=args.allow_huge_images)
    if args.dicom_out:
        raise InputError("--dicom-out writes DICOM from DICOM inputs only (it copies their "
                         "patient and study tags)")
    return read_image(src, allow_huge=args.allow_huge_images)


def colorize_planes(colorizer, item, planes, args: argparse.Namespace, reference,
                     hints) -> bytes:
    """Colorize a DICOM or OME-TIFF stack plane by plane and encode it for its output."""
    from .errors import InputError
    from .image import encode_image, medical

    count = int(np.prod(planes.plane_shape, dtype=np.int64)) if planes.plane_shape else 1
    suffix = item.target.suffix.lower()
    if count > 1 and not args.dicom_out and suffix not in (".tif", ".tiff"):
        holds = f"a {suffix} file" if suffix else "a file without a suffix"
        raise InputError(f"{item.source} holds {count} planes and {holds} holds one image: "
                         "give -o NAME.tif (a stack) or -o FOLDER")
    what = medical.not_a_photo(planes)
    if what and reference is None and hints is None:
        from .advice import PhotoModelWarning, photo_model_note, trained_on_photos

        if trained_on_photos(colorizer):
            warnings.warn(PhotoModelWarning(photo_model_note(what, colorizer.info.name, "cli")))
    stack = medical.display_planes(planes, args.intensity_range)
    rgb = np.stack(colorizer.colorize_batch(list(stack), reference=reference, hints=hints))
    if args.dicom_out:
        return medical.encode_secondary_capture(rgb, planes)
    if len(rgb) == 1 and (planes.kind == "dicom" or suffix not in (".tif", ".tiff")):
        # one plane into an image file: that file's format (an OME-TIFF stack of one
        # plane into out.png was written as TIFF bytes)
        return encode_image(rgb[0], item.target.suffix)
    return medical.encode_stack(rgb, planes)


def download_answer(args: argparse.Namespace) -> Any:
    """The command's answer to 'download these weights?': yes with --download; on a
    terminal, a [y/N] question naming size, source and licence; otherwise no (the error
    then says how)."""
    if getattr(args, "download", False):
        return True
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False

    def ask(spec: Any) -> bool:
        from .cache import describe_size

        licence = f" ({spec.license})" if spec.license else ""
        print(f"colorplug: download weights {spec.public_name!r}, "
              f"{describe_size(spec.size)}, from {spec.url}{licence}? [y/N] ", end="",
              file=sys.stderr, flush=True)
        try:
            return sys.stdin.readline().strip().lower() in ("y", "yes")
        except (OSError, ValueError):
            return False

    return ask
