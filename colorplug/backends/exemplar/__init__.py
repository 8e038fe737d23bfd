"""The `exemplar` backend: deep exemplar-based colorization (He et al. 2018).

A ResNet-34 similarity network on L, nearest-neighbour fields between target and reference
features (`colorplug.nnf`), the reference's colours warped onto the target, and a U-Net
that turns warped colours + similarity maps into a*b*. Without a colour reference, the k
most similar photos of a gallery are retrieved (a descriptor trained for retrieval), each
used as a reference, and the results fused per pixel by correspondence confidence, fading
to gray where no reference matches well (`retrieval`).
Registered through the plugin hook like any third-party backend.
"""
from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl
from .info import INFO


def build(*, weights: Any = None, device: str = "auto", **options: Any) -> Any:
    from .colorizer import ExemplarColorizer

    return ExemplarColorizer(weights=weights, device=device, **options)


@hookimpl
def colorplug_register_colorizers(register):  # type: ignore[no-untyped-def]
    register("exemplar", build, INFO)
