"""colorplug errors worded for napari: what went wrong, and the remedy in the widget's terms.

colorplug's own messages give API/CLI advice ("pass reference=...", "use device='cpu'");
here each known error ``kind`` (colorplug.errors) gets napari words instead.
"""
from __future__ import annotations

from typing import Any

import colorplug

WORDING = {
    "missing_reference": "backend {backend!r} needs a colour reference: choose an RGB image "
                         "layer as Reference",
    "grayscale_reference": "the Reference layer has no colour: choose an RGB (colour) image "
                           "layer as Reference",
    "no_hints": "backend {backend!r} needs colour hints: choose a Points, Shapes or Labels "
                "layer as Hints and give the hints a colour",
    "no_cuda": "CUDA is not available on this machine: choose Device ▸ cpu (or auto)",
}


def napari_message(exc: BaseException, backend: Any = None) -> str:
    """One line for a napari notification; never a traceback."""
    if isinstance(exc, colorplug.ColorplugError):
        template = WORDING.get(getattr(exc, "kind", ""))
        return template.format(backend=backend) if template else str(exc)
    return f"{type(exc).__name__}: {exc}"
