"""Inference for `guided`: L* and the hints brought to the working size, the U-Net, chroma
back onto the full-resolution lightness by the pipeline."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ...batching import batches_by_shape
from ...device import resolve_device
from ...errors import InputError
from ...hints import hint_maps
from ...image import check_working_size, resize_map, working_shape
from ...pipeline import ChromaColorizer
from ...propagation import spread
from ...weights import WeightsEnum, WeightsSpec, load_model
from .info import INFO
from .model import AB_SCALE, GuidedConfig, GuidedNet, network_input


class GuidedWeights(WeightsEnum):
    """Shipped weights for the hints network."""

    PHOTOS_SPLIT_V2 = WeightsSpec(
        filename="guided_photos_split_v2.safetensors",
        description="Trained on the 351 train photos of split photos_v1 with simulated hints "
                    "(0-50 points and strokes): v1 plus 12 epochs, checkpoint and the choice "
                    "over v1 made on val (model card: docs/backends/guided.md).",
    )
    DEFAULT = PHOTOS_SPLIT_V2


def hints_at(ab: np.ndarray, mask: np.ndarray, width: int, height: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution hint maps -> the working size: a cell is hinted when any of its
    pixels is (area weighting never loses a one-pixel hint), with the mean a*b* of its
    hinted pixels."""
    import cv2

    if mask.shape == (height, width):
        return ab.astype(np.float32), mask.astype(bool)
    m = mask.astype(np.float32)
    cover = cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA)
    total = cv2.resize(ab.astype(np.float32) * m[..., None], (width, height),
                       interpolation=cv2.INTER_AREA)
    hinted = cover > 1e-6
    small_ab = np.where(hinted[..., None], total / np.maximum(cover, 1e-6)[..., None], 0)
    return small_ab.astype(np.float32), hinted


#: Spreading the hints' corrections (chosen on photos_v1:val by benchmarks/hints_spread.py):
#: the network's a*b* are moved to agree with every hint exactly, and each hint's correction
#: spreads over pixels of similar lightness (affinity width SPREAD_SIGMA in L*/100), fading
#: with the distance (SPREAD_DECAY: larger fades sooner).
SPREAD_SIGMA = 0.05
SPREAD_DECAY = 1e-2


def spread_corrections(lightness: np.ndarray, pred_ab: np.ndarray, hint_ab: np.ndarray,
                       mask: np.ndarray, sigma: float = SPREAD_SIGMA,
                       decay: float = SPREAD_DECAY) -> np.ndarray:
    """`pred_ab` (H, W, 2) plus the hints' corrections (hint - prediction at the hinted
    pixels) spread edge-aware over the image: exact at the hints, the network's elsewhere."""
    if not mask.any():
        return pred_ab
    correction = np.where(mask[..., None], hint_ab - pred_ab, 0)
    return pred_ab + spread(lightness / 100.0, correction, mask, sigma=sigma,
                            lam=decay).astype(np.float32)


class GuidedColorizer(ChromaColorizer):
    info = INFO

    def __init__(self, *, weights: Any = None, device: str = "auto", working_size: int = 256,
                 batch_size: int = 8, spread: bool = True, spread_sigma: float = SPREAD_SIGMA,
                 spread_decay: float = SPREAD_DECAY, **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer; got {batch_size!r}")
        if isinstance(spread, str):
            if spread.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise InputError(f"spread must be true or false; got {spread!r}")
            spread = spread.lower() in ("true", "1", "yes", "on")
        for name, value in (("spread_sigma", spread_sigma), ("spread_decay", spread_decay)):
            try:
                ok = float(value) > 0 and np.isfinite(float(value))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise InputError(f"{name} must be a positive number; got {value!r}")
        self.spread = bool(spread)
        self.spread_sigma, self.spread_decay = float(spread_sigma), float(spread_decay)
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.model, self.metadata = load_model(
            weights, GuidedWeights.DEFAULT.spec, lambda cfg: GuidedNet(GuidedConfig(**cfg)),
            self.device, backend=INFO.name)
        self.working_size = check_working_size(working_size, minimum=32,
                                               multiple=self.model.cfg.multiple)

    @torch.inference_mode()
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: Any,
                       hints: Any) -> list[np.ndarray]:
        """Images of one working shape go through the network together; the same hints
        apply to every image of a call (a stack's planes share them)."""
        multiple = self.model.cfg.multiple
        shapes = [working_shape(*lum.shape, self.working_size, multiple=multiple)
                  for lum in lightness]
        maps = {}
        if hints is not None:
            for lum in lightness:
                if lum.shape not in maps:
                    maps[lum.shape] = hint_maps(hints, lum.shape)
        out: list[np.ndarray] = [np.empty(0)] * len(lightness)
        for idx in batches_by_shape(shapes, self.batch_size):
            h, w = shapes[idx[0]]
            lum = np.stack([resize_map(lightness[i], w, h) for i in idx])[:, None]
            ab = np.zeros((len(idx), 2, h, w), np.float32)
            mask = np.zeros((len(idx), 1, h, w), np.float32)
            for j, i in enumerate(idx):
                if lightness[i].shape in maps:
                    small_ab, small_mask = hints_at(*maps[lightness[i].shape], w, h)
                    ab[j] = small_ab.transpose(2, 0, 1)
                    mask[j, 0] = small_mask
            x = network_input(*(torch.from_numpy(a).float().to(self.device)
                                for a in (lum, ab, mask)))
            pred = self.model(x).float() * AB_SCALE
            for j, i in enumerate(idx):
                out[i] = pred[j].permute(1, 2, 0).cpu().numpy()
                if self.spread and mask[j, 0].any():
                    out[i] = spread_corrections(lum[j, 0], out[i], ab[j].transpose(1, 2, 0),
                                                mask[j, 0] > 0, self.spread_sigma,
                                                self.spread_decay)
        return out
