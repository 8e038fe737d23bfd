"""Inference for the autoencoder: L reduced to 32x32, predicted RGB -> a*b*, upsampled."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...color import rgb_to_lab_torch
from ...device import resolve_device
from ...image import resize_map
from ...pipeline import ChromaColorizer
from ...weights import WeightsEnum, WeightsSpec, load_model
from .info import INFO
from .model import Autoencoder, AutoencoderConfig


class AutoencoderWeights(WeightsEnum):
    """Shipped weights for the autoencoder."""

    PHOTOS32_V1 = WeightsSpec(
        filename="autoencoder_photos32_v1.safetensors",
        description="Trained on random crops of ~410 Debian-packaged colour photos at 32x32 "
                    "(before the split: its training photos include photos_v1 val and test).",
    )
    PHOTOS32_SPLIT_V2 = WeightsSpec(
        filename="autoencoder_photos32_split_v2.safetensors",
        description="Trained on the 351 train photos of split photos_v1 at 32x32, epoch "
                    "chosen on val (model card: docs/backends/autoencoder.md).",
    )
    DEFAULT = PHOTOS32_SPLIT_V2


class AutoencoderColorizer(ChromaColorizer):
    info = INFO

    def __init__(self, *, weights: Any = None, device: str = "auto", batch_size: int = 256,
                 **options: Any) -> None:
        super().__init__(**options)
        self.device = resolve_device(device)
        self.model, self.metadata = load_model(
            weights, AutoencoderWeights.DEFAULT.spec,
            lambda cfg: Autoencoder(AutoencoderConfig(**cfg)), self.device, backend=INFO.name)
        self.batch_size = batch_size

    @torch.inference_mode()
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: Any,
                       hints: Any) -> list[np.ndarray]:
        size = self.model.cfg.size
        small = np.stack([resize_map(l, size, size) for l in lightness])[:, None] / 100.0
        out: list[np.ndarray] = []
        for i in range(0, len(small), self.batch_size):
            x = torch.from_numpy(small[i:i + self.batch_size]).to(self.device)
            rgb = self.model(x).float()
            ab = rgb_to_lab_torch(rgb)[:, 1:]
            out.extend(ab.permute(0, 2, 3, 1).cpu().numpy())
        return out
