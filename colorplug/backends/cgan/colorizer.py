"""Inference for `cgan`: L at the working size, padded to the generator's multiple,
a*b* predicted, cropped back and upsampled under the full-resolution L."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ... import colour_bins
from ...device import resolve_device
from ...errors import InputError
from ...image import check_working_size, resize_map, working_shape
from ...batching import batches_by_shape
from ...pipeline import ChromaColorizer
from ...weights import WeightsEnum, WeightsSpec, load_model
from .info import INFO
from .model import GeneratorConfig, build_generator, l_to_unit, signed_unit_to_ab


class CGANWeights(WeightsEnum):
    """Shipped generator weights."""

    RESNET18_PHOTOS_V1 = WeightsSpec(
        filename="cgan_resnet18_photos_v1.safetensors",
        description="ResNet-18-encoder generator (working size 128) trained from scratch with "
                    "a 70x70 PatchGAN on ~410 Debian-packaged colour photos (model card: "
                    "docs/backends/cgan.md).",
    )
    RESNET18_BINS_SPLIT_V2 = WeightsSpec(
        filename="cgan_resnet18_bins_split_v2.safetensors",
        description="ResNet-18-encoder generator predicting a*b* bins (working size 128), "
                    "trained on the 351 train photos of split photos_v1 on a GPU; temperature "
                    "1 chosen on val (model card: docs/backends/cgan.md).",
    )
    DEFAULT = RESNET18_BINS_SPLIT_V2



class CGANColorizer(ChromaColorizer):
    info = INFO

    def __init__(self, *, weights: Any = None, device: str = "auto",
                 working_size: int | None = None, batch_size: int = 8,
                 temperature: float | None = None, saturation: float | None = None,
                 steering: float | None = None, **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer; got {batch_size!r}")
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.model, self.metadata = load_model(
            weights, CGANWeights.DEFAULT.spec,
            lambda cfg: build_generator(GeneratorConfig(**cfg)), self.device, backend=INFO.name)
        self.cfg = GeneratorConfig(**self.metadata.get("config", {}))
        size = self.cfg.working_size if working_size is None else working_size
        self.working_size = check_working_size(size, minimum=16)
        self.bins = self.cfg.colour_head == "bins"
        colour_bins.check_decoding_options(temperature, saturation, self.bins, steering)
        self.temperature = self.cfg.temperature if temperature is None else float(temperature)
        self.saturation = self.cfg.saturation if saturation is None else float(saturation)
        self.steering = self.cfg.steering if steering is None else float(steering)

    def decode(self, output: torch.Tensor) -> torch.Tensor:
        """Generator output -> a*b* (N, 2, h, w) (bins: annealed mean x saturation)."""
        if self.bins:
            return colour_bins.decode(output, self.model.bin_centres, self.temperature,
                                      self.saturation, self.steering)
        return signed_unit_to_ab(output.float()) * self.saturation

    def predict_ab(self, lums: list[np.ndarray]) -> np.ndarray:
        """a*b* (n, h, w, 2) at the working size for L* maps (H, W) of one working shape."""
        return self._run(lums, self.decode)

    @torch.inference_mode()
    def _run(self, lums: list[np.ndarray], head: Any) -> np.ndarray:
        """The generator over L* maps of one working shape; `head` turns its output
        (n, C, h, w) into the maps returned, (n, h, w, channels) at the working size."""
        m = self.cfg.multiple
        h, w = working_shape(*lums[0].shape, self.working_size)
        x = torch.from_numpy(np.stack([resize_map(lum, w, h) for lum in lums])
                             .astype(np.float32))[:, None].to(self.device)
        ph, pw = -h % m, -w % m
        x = l_to_unit(x)
        if ph or pw:
            # reflect where the image is large enough, replicate the rest
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
        maps = head(self.model(x))[:, :, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return maps.permute(0, 2, 3, 1).cpu().numpy()

    def predict_chroma(self, lightness: list[np.ndarray], *, reference: Any,
                       hints: Any) -> list[np.ndarray]:
        """Images of one working shape go through the generator together (`batch_size`)."""
        shapes = [working_shape(*lum.shape, self.working_size) for lum in lightness]
        out: list[np.ndarray] = [np.empty(0)] * len(lightness)
        for idx in batches_by_shape(shapes, self.batch_size):
            for j, ab in zip(idx, self.predict_ab([lightness[i] for i in idx])):
                out[j] = ab
        return out

    def predict_confidence(self, lightness: list[np.ndarray], *,
                           reference: Any) -> list[np.ndarray]:
        """1 - the normalised entropy of each pixel's bin distribution (bins weights)."""
        if not self.bins:
            raise InputError("backend 'cgan': these weights regress a*b* and have no per-pixel "
                             "confidence; weights trained with --colour-loss bins do")
        return [self._run([lum], lambda out: colour_bins.confidence(out)[:, None])[0, ..., 0]
                for lum in lightness]
