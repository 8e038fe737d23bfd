"""What the `exemplar` backend is, as data: its `BackendInfo` (one module, so the package and
its colorizer both import it without importing each other)."""
from __future__ import annotations

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
