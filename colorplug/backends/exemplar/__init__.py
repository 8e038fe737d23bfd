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
from ...protocol import BackendInfo

INFO = BackendInfo(
    name="exemplar",
    description="Colours taken from a reference photo: ResNet-34 features, nearest-neighbour "
                "field (PatchMatch / exact), warped colours refined by a U-Net (He et al. 2018). "
                "Without a reference: the k most similar photos of a gallery, fused by "
                "correspondence confidence.",
    needs_reference=False,
    accepts_reference=True,
    working_size=256,
    trainer="colorplug.backends.exemplar.train",
    extra={"configurable_working_size": True},
    options={"working_size": "longest side features are matched at (>= 64)", "refine": "true: the colour network refines the warped colours; false: warp only", "similarity_weights": "weights of the similarity network: a path, URL or 'torchvision:PATH'",
             "gallery": "without a reference: folder of colour photos to take references from "
                        "(default: the shipped gallery of permissively licensed photos)",
             "k": "without a reference: how many gallery photos are fused (default 2)",
             "threshold": "without a reference: correspondence similarity below which chroma "
                          "fades to gray (0-1, default 0: no fade)",
             "descriptor_weights": "weights of the retrieval descriptor: a path or URL"},
)


def build(*, weights: Any = None, device: str = "auto", **options: Any) -> Any:
    from .colorizer import ExemplarColorizer

    return ExemplarColorizer(weights=weights, device=device, **options)


@hookimpl
def colorplug_register_colorizers(register):  # type: ignore[no-untyped-def]
    register("exemplar", build, INFO)
