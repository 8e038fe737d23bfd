"""The plugin module named by the ``colorplug`` entry point: registers both backends.

Only colorplug's public API is used, and scipy is imported inside the factories so
that discovering the plugin stays cheap.
"""
from __future__ import annotations

from typing import Any

import colorplug

TRANSFER = colorplug.BackendInfo(
    name="transfer",
    description="Colour transfer from a reference photo by luminance and texture matching "
                "(Welsh et al. 2002); training-free.",
    needs_reference=True,
)
SCRIBBLE = colorplug.BackendInfo(
    name="scribble",
    description="Propagates user colour scribbles to pixels of similar intensity "
                "(Levin et al. 2004); training-free.",
    needs_hints=True,
)


def build_transfer(*, weights: Any = None, device: str = "auto", **options: Any):
    from .transfer import TransferColorizer

    return TransferColorizer(**options)


def build_scribble(*, weights: Any = None, device: str = "auto", **options: Any):
    from .scribble import ScribbleColorizer

    return ScribbleColorizer(**options)


@colorplug.hookimpl
def colorplug_register_colorizers(register):  # type: ignore[no-untyped-def]
    register("transfer", build_transfer, TRANSFER)
    register("scribble", build_scribble, SCRIBBLE)
