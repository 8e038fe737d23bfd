"""fusion's network as one graph for ``runtime="onnx"`` / ``"openvino"``
(`colorplug.runtimes`): the local path and the global path in one export, sizes dynamic.

Inputs: ``local``, L* / 100 at the working shape with its mirrored border (N, 1, H, W), H
and W multiples of 8; ``global``, L* / 100 at 224 x 224 (N, 1, 224, 224) of the images
themselves, or of the reference repeated N times. Output: what `FusionNet` gives at H/2 x
W/2 (a*b* in [0, 1], or bin logits); decoding stays in the colorizer, as with torch.
"""
from __future__ import annotations

import torch
from torch import nn

from ...runtimes import OnnxGraph
from .model import FusionNet

#: Largest side / batch the export's dynamic axes allow (torch.export needs bounds).
MAX_SIDE = 8 * 2048
MAX_BATCH = 4096


class FusionGraph(nn.Module):
    """`FusionNet` with its global vectors computed inside: (local, global) -> output."""

    def __init__(self, model: FusionNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, local: torch.Tensor, global_l: torch.Tensor) -> torch.Tensor:
        return self.model(local, global_vector=self.model.global_features(global_l)[0])[0]


def onnx_graph(model: FusionNet) -> OnnxGraph:
    """The export of `model` (on the CPU) with batch, height and width dynamic."""
    from torch.export import Dim

    model = model.cpu().eval()
    g = model.cfg.global_size
    batch = Dim("batch", min=1, max=MAX_BATCH)  # examples of 2: torch.export keeps 1 fixed
    h8 = Dim("h8", min=1, max=MAX_SIDE // 8)
    w8 = Dim("w8", min=1, max=MAX_SIDE // 8)
    example = (torch.rand(2, 1, 8 * 36, 8 * 44), torch.rand(2, 1, g, g))
    return OnnxGraph(FusionGraph(model), example, ("local", "global"), ("output",),
                     dynamic_shapes={"local": {0: batch, 2: 8 * h8, 3: 8 * w8},
                                     "global_l": {0: batch}},
                     what="backend 'fusion'")
