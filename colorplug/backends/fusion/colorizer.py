"""Inference for `fusion`: local path at the working size, global path at 224x224."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ... import colour_bins
from ...errors import InputError
from ...image import check_working_size, resize_map, working_shape
from ...batching import batches_by_shape
from ...pipeline import ChromaColorizer
from ...runtimes import OnnxGraph, check_runtime, exported_network, require, runtime_device
from ...weights import WeightsEnum, WeightsSpec, load_model
from .info import INFO
from .model import FusionConfig, FusionNet, unit_interval_to_ab


class FusionWeights(WeightsEnum):
    """Shipped weights for the fusion network."""

    PHOTOS_W025_V1 = WeightsSpec(
        filename="fusion_photos_w025_v1.safetensors",
        description="Width 0.25, trained on ~410 Debian-packaged colour photos, 224 crops.",
    )
    PHOTOS_SPLIT_V2 = WeightsSpec(
        filename="fusion_photos_split_v2.safetensors",
        description="Width 0.25, trained on the 351 train photos of split photos_v1 (test "
                    "packages never seen), scene labels; saturation 2.0 chosen on val "
                    "(model card: docs/backends/fusion.md).",
    )
    PHOTOS_SPLIT_W04_V3 = WeightsSpec(
        filename="fusion_photos_split_w04_v3.safetensors",
        description="Width 0.4, trained on the 351 train photos of split photos_v1 on a GPU "
                    "(900 steps of batch 64, chosen by val loss), scene labels; saturation "
                    "2.2 chosen on val (model card: docs/backends/fusion.md).",
    )
    DEFAULT = PHOTOS_SPLIT_W04_V3



#: Pixels of mirrored image added around the working-size input (a multiple of 8, so the
#: network's strides still divide it; its output, at half resolution, loses BORDER // 2).
#: Zero padding inside the network made a 10-20 px band of weaker colour along the edges of
#: every output; mirrored context moves that band outside the image.
BORDER = 16


def reflect_padded(local: torch.Tensor) -> torch.Tensor:
    """The input (n, 1, h, w) with BORDER mirrored pixels on every side."""
    import torch.nn.functional as F

    pad = min(BORDER, local.shape[-1] - 1, local.shape[-2] - 1)
    if pad < BORDER:  # tiny inputs: repeat edge pixels instead of mirroring beyond them
        return F.pad(local, (BORDER,) * 4, mode="replicate")
    return F.pad(local, (BORDER,) * 4, mode="reflect")


class FusionColorizer(ChromaColorizer):
    info = INFO

    def __init__(self, *, weights: Any = None, device: str = "auto", working_size: int = 256,
                 batch_size: int = 8, temperature: float | None = None,
                 saturation: float | None = None, steering: float | None = None,
                 runtime: str = "torch", **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer; got {batch_size!r}")
        self.batch_size = batch_size
        self.working_size = check_working_size(working_size, minimum=32, multiple=8)
        self.runtime = check_runtime(runtime, INFO.name)
        if self.runtime != "torch":
            require(self.runtime)  # before loading anything
        self.device = runtime_device(self.runtime, device)
        self.model, self.metadata = load_model(
            weights, FusionWeights.DEFAULT.spec, lambda cfg: FusionNet(FusionConfig(**cfg)),
            self.device, backend=INFO.name)
        cfg = self.model.cfg
        self.bins = cfg.colour_head == "bins"
        colour_bins.check_decoding_options(temperature, saturation, self.bins, steering)
        self.temperature = cfg.temperature if temperature is None else float(temperature)
        self.saturation = cfg.saturation if saturation is None else float(saturation)
        self.steering = cfg.steering if steering is None else float(steering)
        self.exported = None  # the network run by onnxruntime / openvino (runtime option)
        if self.runtime != "torch":
            from ...weights import sha256_file

            self.exported = exported_network(
                self.runtime, self.onnx_graph, name="fusion", backend=INFO.name,
                weights_sha256=sha256_file(self.metadata["weights_file"]))

    def onnx_graph(self) -> OnnxGraph:
        """The network as one graph for ``torch.onnx.export`` (`colorplug.runtimes`)."""
        from .graph import onnx_graph

        return onnx_graph(self.model)

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """Network output -> a*b* (N, 2, h, w): bins by the annealed mean at `temperature`,
        times `saturation`; regression weights map [0, 1] back to a*b*."""
        if not self.bins:
            return unit_interval_to_ab(output.float()) * self.saturation
        return colour_bins.decode(output, self.model.bin_centres, self.temperature,
                                  self.saturation, self.steering)

    def _tensor(self, arr: np.ndarray) -> torch.Tensor:
        """L* (h, w) or a stack (n, h, w) -> network input (n, 1, h, w) in [0, 1]."""
        t = torch.from_numpy(arr / 100.0)
        return (t[None, None] if t.ndim == 2 else t[:, None]).to(self.device)

    @torch.inference_mode()
    def global_vector(self, lightness: np.ndarray) -> torch.Tensor:
        g = self.model.cfg.global_size
        return self.model.global_features(self._tensor(resize_map(lightness, g, g)))[0]

    @torch.inference_mode()
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: np.ndarray | None,
                       hints: Any) -> list[np.ndarray]:
        """Images of one working shape go through the network together (`batch_size`)."""
        return self._run(lightness, reference, self.decode)

    @torch.inference_mode()
    def predict_confidence(self, lightness: list[np.ndarray], *,
                           reference: np.ndarray | None) -> list[np.ndarray]:
        """1 - the normalised entropy of each pixel's bin distribution (bins weights)."""
        if not self.bins:
            raise InputError("backend 'fusion': these weights regress a*b* and have no "
                             "per-pixel confidence; weights trained with --colour-loss bins do")
        maps = self._run(lightness, reference,
                         lambda output: colour_bins.confidence(output)[:, None])
        return [m[..., 0] for m in maps]

    def _run(self, lightness: list[np.ndarray], reference: np.ndarray | None,
             head: Any) -> list[np.ndarray]:
        """The network over `lightness` in batches of one working shape; `head` turns its
        output (n, C, h, w) into the maps returned, (h, w, channels) each."""
        exported = self.exported
        prior = self.global_vector(reference[..., 0]) \
            if reference is not None and exported is None else None
        g = self.model.cfg.global_size
        shapes = [working_shape(*lum.shape, self.working_size, multiple=8) for lum in lightness]
        out: list[np.ndarray] = [np.empty(0)] * len(lightness)
        for idx in batches_by_shape(shapes, self.batch_size):
            lh, lw = shapes[idx[0]]
            local = self._tensor(np.stack([resize_map(lightness[i], lw, lh) for i in idx]))
            if exported is not None:  # the global path runs inside the exported graph
                sources = [reference[..., 0]] * len(idx) if reference is not None else \
                    [lightness[i] for i in idx]
                glob = self._tensor(np.stack([resize_map(x, g, g) for x in sources]))
                output = torch.from_numpy(exported(reflect_padded(local).cpu().numpy(),
                                                   glob.cpu().numpy())[0])
            else:
                if prior is not None:
                    vec = prior.expand(len(idx), -1)
                else:
                    vec = self.model.global_features(self._tensor(
                        np.stack([resize_map(lightness[i], g, g) for i in idx])))[0]
                output, _ = self.model(reflect_padded(local), global_vector=vec)
            output = output[..., BORDER // 2:-(BORDER // 2), BORDER // 2:-(BORDER // 2)]
            maps = head(output).permute(0, 2, 3, 1).cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = maps[j]
        return out
