"""Inference for `cgan`: L at the working size, padded to the generator's multiple,
a*b* predicted, cropped back and upsampled under the full-resolution L."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...device import resolve_device
from ...errors import InputError
from ...image import resize_map, working_shape
from ...pipeline import ChromaColorizer
from ...weights import WeightsEnum, WeightsSpec, load_model
from . import INFO
from .model import GeneratorConfig, build_generator, l_to_unit, unit_to_ab


class CGANWeights(WeightsEnum):
    """Shipped generator weights."""

    RESNET18_PHOTOS_V1 = WeightsSpec(
        filename="cgan_resnet18_photos_v1.safetensors",
        description="ResNet-18-encoder generator (working size 128) trained from scratch with "
                    "a 70x70 PatchGAN on ~410 Debian-packaged colour photos (model card: "
                    "docs/backends/cgan.md).",
    )
    DEFAULT = RESNET18_PHOTOS_V1



class CGANColorizer(ChromaColorizer):
    info = INFO

    def __init__(self, *, weights: Any = None, device: str = "auto",
                 working_size: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.device = resolve_device(device)
        self.model, self.metadata = load_model(
            weights, CGANWeights.DEFAULT.spec,
            lambda cfg: build_generator(GeneratorConfig(**cfg)), self.device, backend=INFO.name)
        self.cfg = GeneratorConfig(**self.metadata.get("config", {}))
        size = self.cfg.working_size if working_size is None else working_size
        if not isinstance(size, int) or size < 16:
            raise InputError(f"working_size must be an integer >= 16; got {working_size!r}")
        self.working_size = size

    @torch.inference_mode()
    def predict_ab(self, lum: np.ndarray) -> np.ndarray:
        """a*b* (h, w, 2) at the working size for one L* map (H, W)."""
        m = self.cfg.multiple
        h, w = working_shape(*lum.shape, self.working_size)
        x = torch.from_numpy(resize_map(lum, w, h).astype(np.float32))[None, None].to(self.device)
        ph, pw = -h % m, -w % m
        x = l_to_unit(x)
        if ph or pw:
            # reflect where the image is large enough, replicate the rest
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode=mode)
        ab = unit_to_ab(self.model(x).float())[0]
        ab = ab[:, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return ab.permute(1, 2, 0).cpu().numpy()

    def predict_chroma(self, lightness: list[np.ndarray], *, reference: Any,
                       hints: Any) -> list[np.ndarray]:
        return [self.predict_ab(lum) for lum in lightness]
