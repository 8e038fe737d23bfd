"""Inference for `fusion`: local path at the working size, global path at 224x224."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...device import resolve_device
from ...errors import InputError
from ...image import resize_map, working_shape
from ...pipeline import ChromaColorizer
from ...weights import WeightsEnum, WeightsSpec, load_model
from . import INFO
from .model import FusionConfig, FusionNet, unit_to_ab


class FusionWeights(WeightsEnum):
    """Shipped weights for the fusion network."""

    PHOTOS_W025_V1 = WeightsSpec(
        filename="fusion_photos_w025_v1.safetensors",
        description="Width 0.25, trained on ~410 Debian-packaged colour photos, 224 crops.",
    )
    DEFAULT = PHOTOS_W025_V1



class FusionColorizer(ChromaColorizer):
    info = INFO

    def __init__(self, *, weights: Any = None, device: str = "auto", working_size: int = 256,
                 **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(working_size, int) or working_size < 32 or working_size % 8:
            raise InputError(f"working_size must be a multiple of 8, at least 32; got "
                             f"{working_size!r}")
        self.working_size = working_size
        self.device = resolve_device(device)
        self.model, self.metadata = load_model(
            weights, FusionWeights.DEFAULT.spec, lambda cfg: FusionNet(FusionConfig(**cfg)),
            self.device, backend=INFO.name)

    def _tensor(self, arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(arr / 100.0)[None, None].to(self.device)

    @torch.inference_mode()
    def global_vector(self, lightness: np.ndarray) -> torch.Tensor:
        g = self.model.cfg.global_size
        return self.model.global_features(self._tensor(resize_map(lightness, g, g)))[0]

    @torch.inference_mode()
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: np.ndarray | None,
                       hints: Any) -> list[np.ndarray]:
        prior = self.global_vector(reference[..., 0]) if reference is not None else None
        out = []
        for lum in lightness:
            lh, lw = working_shape(*lum.shape, self.working_size, multiple=8)
            local = self._tensor(resize_map(lum, lw, lh))
            vec = prior if prior is not None else self.global_vector(lum)
            ab01, _ = self.model(local, global_vector=vec)
            out.append(unit_to_ab(ab01.float())[0].permute(1, 2, 0).cpu().numpy())
        return out
