"""Inference for `exemplar`: features of target and reference, correspondence, warped
reference colours, then the colour network (or, with refine=False, the warped colours
alone, smoothed by their confidence)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...device import resolve_device
from ...errors import BackendError, InputError, WeightsError
from ...image import resize_map, working_shape
from ...nnf import upsample_field, warp
from ...pipeline import ChromaColorizer
from ...weights import (WeightsEnum, WeightsSpec, load_file, load_into, load_model,
                        read_torch_state,
                        resolve)
from . import INFO
from .correspond import correspond, warp_ab
from .model import AB_NORM, ColorNet, ColorNetConfig, SimilarityNet

class SimilarityWeights(WeightsEnum):
    """Shipped weights for the ResNet-34 similarity network."""

    R34_SELFSUP_V1 = WeightsSpec(
        filename="exemplar_similarity_r34_v1.safetensors",
        description="ResNet-34 on L, trained self-supervised for correspondence on augmented "
                    "pairs of ~410 Debian-packaged colour photos.",
    )
    DEFAULT = R34_SELFSUP_V1

class ExemplarWeights(WeightsEnum):
    """Shipped weights for the colour network (the U-Net after the warp)."""

    COLOR_V1 = WeightsSpec(
        filename="exemplar_color_v1.safetensors",
        description="U-Net on L + warped a*b* + 10 similarity maps, trained with the shipped "
                    "similarity network on ~410 Debian-packaged colour photos.",
    )
    DEFAULT = COLOR_V1

def load_similarity(weights: Any) -> tuple[SimilarityNet, dict]:
    """Our safetensors (shipped, path, URL, enum) or a torchvision ResNet-34 state dict
    file (`torchvision:PATH`, e.g. resnet34-b627a593.pth from a torch cache)."""
    net = SimilarityNet()
    if isinstance(weights, str) and weights.startswith("torchvision:"):
        path = weights.split(":", 1)[1]
        if not path:
            raise WeightsError("similarity_weights='torchvision:PATH' needs the path of a "
                               "torchvision ResNet-34 state dict file after the colon")
        net.load_torchvision(read_torch_state(path, "torchvision weights"))
        return net, {"weights_file": path}
    resolved = resolve(weights, SimilarityWeights.DEFAULT.spec)
    state, meta = load_file(resolved)
    load_into(net, state, source=repr(str(resolved.path)))
    return net, {**meta, "weights_file": str(resolved.path)}

def smooth_by_confidence(ab: torch.Tensor, confidence: torch.Tensor, sigma: float = 1.5
                         ) -> torch.Tensor:
    """Gaussian blur of a*b* weighted by a confidence map: blur(ab * c) / blur(c)."""
    radius = max(1, int(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=ab.dtype, device=ab.device)
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    c = confidence.clamp(min=1e-3)[:, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        n = t.shape[1]
        t = F.pad(t, (radius, radius, radius, radius), mode="replicate")
        t = F.conv2d(t, k.view(1, 1, 1, -1).expand(n, 1, 1, -1), groups=n)
        return F.conv2d(t, k.view(1, 1, -1, 1).expand(n, 1, -1, 1), groups=n)

    return blur(ab * c) / blur(c)

def build_input(lightness: torch.Tensor, warped_ab: torch.Tensor, similarities: torch.Tensor
                ) -> torch.Tensor:
    """The colour network's 13 channels at the level-0 grid: L/50-1, a*b*/110, similarities."""
    size = warped_ab.shape[-2:]
    small_l = F.interpolate(lightness, size=size, mode="area") if lightness.shape[-2:] != size \
        else lightness
    return torch.cat([small_l / 50.0 - 1.0, warped_ab / AB_NORM, similarities], 1)

class ExemplarColorizer(ChromaColorizer):
    info = INFO

    def __init__(self, *, weights: Any = None, similarity_weights: Any = None,
                 device: str = "auto", working_size: int = 256, refine: bool = True,
                 **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(working_size, int) or working_size < 64:
            raise InputError(f"working_size must be an integer >= 64; got {working_size!r}")
        self.working_size = working_size
        self.refine = bool(refine)
        self.device = resolve_device(device)
        self.similarity, self.similarity_meta = load_similarity(similarity_weights)
        self.similarity = self.similarity.eval().to(self.device)
        self.color_net: ColorNet | None = None
        self.metadata: dict = {}
        if self.refine:
            self.color_net, self.metadata = load_model(
                weights, ExemplarWeights.DEFAULT.spec, lambda cfg: ColorNet(ColorNetConfig(**cfg)),
                self.device, backend=INFO.name)

    def _lightness(self, lum: np.ndarray) -> torch.Tensor:
        h, w = working_shape(*lum.shape, self.working_size, multiple=32)
        return torch.from_numpy(resize_map(lum, w, h).astype(np.float32))[None, None].to(self.device)

    @torch.inference_mode()
    def chroma_for(self, lum: np.ndarray, ref_l: torch.Tensor, ref_ab: torch.Tensor,
                   ref_feats: list[torch.Tensor]) -> np.ndarray:
        """a*b* (h, w, 2) for one target: on the level-0 grid (half the working size) from the
        colour network, on the working grid with refine=False."""
        tl = self._lightness(lum)
        feats = self._features(tl)
        corr = correspond(feats, ref_feats)
        if self.color_net is None:
            # training-free: the level-0 field upsampled to the working grid, the reference's
            # colours gathered there, smoothed where the match is confident
            field = upsample_field(corr.t_to_r, *tl.shape[-2:], ref_feats[0].shape[-2:],
                                   ref_l.shape[-2:])
            confidence = F.interpolate(corr.similarities[:, :1], size=tl.shape[-2:],
                                       mode="bilinear", align_corners=False)[:, 0]
            ab = smooth_by_confidence(warp(ref_ab, field), confidence, sigma=1.0)
        else:
            warped = warp_ab(ref_ab, corr.t_to_r, ref_feats[0].shape[-2:])
            ab = self.color_net(build_input(tl, warped, corr.similarities)).float() * AB_NORM
        return ab[0].permute(1, 2, 0).cpu().numpy()

    @torch.inference_mode()
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: np.ndarray | None,
                       hints: Any) -> list[np.ndarray]:
        if reference is None:  # the pipeline already refuses; kept for direct callers
            raise InputError("the exemplar backend needs a colour reference image")
        ref_l = self._lightness(reference[..., 0])
        h, w = ref_l.shape[-2:]
        ref_ab = torch.from_numpy(np.stack([resize_map(reference[..., c], w, h) for c in (1, 2)])
                                  .astype(np.float32))[None].to(self.device)
        ref_feats = self._features(ref_l)
        return [self.chroma_for(lum, ref_l, ref_ab, ref_feats) for lum in lightness]

    def _features(self, lightness: torch.Tensor) -> list[torch.Tensor]:
        """The similarity network's features; non-finite ones mean broken weights, which is
        said as such (not blamed on the input)."""
        feats = self.similarity(lightness)
        if not all(bool(torch.isfinite(f).all()) for f in feats):
            raise BackendError(
                "backend 'exemplar': the similarity network produced NaN or infinite features "
                f"with weights {self.similarity_meta.get('weights_file', '(shipped)')!r}; the "
                "similarity weights are broken")
        return feats
