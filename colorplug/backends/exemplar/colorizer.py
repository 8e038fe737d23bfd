"""Inference for `exemplar`: features of target and reference, correspondence, warped
reference colours, then the colour network (or, with refine=False, the warped colours
alone, smoothed by their confidence)."""
from __future__ import annotations

import hashlib

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...device import resolve_device
from ...errors import BackendError, ColorplugError, InputError, WeightsError
from ...image import (check_working_size, prepare_reference, read_image, resize_map,
                      working_shape)
from ...nnf import upsample_field, warp
from ...pipeline import ChromaColorizer
from ...weights import (WeightsEnum, WeightsSpec, load_file, load_into, load_model,
                        read_torch_state, resolve, sha256_file)
from .info import INFO
from .correspond import correspond, warp_ab
from .model import AB_NORM, ColorNet, ColorNetConfig, SimilarityNet
from .retrieval import (DEFAULT_GALLERY, DescriptorConfig, DescriptorHead, GalleryIndex,
                        check_k, check_threshold, gallery_files, index_key, load_or_build,
                        pooled, shipped_index)

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

#: defaults of the automatic mode (no reference), chosen on photos_v1's val part by
#: benchmarks/exemplar_auto.py sweep (rule: lowest dCF with PSNR >= gray): k=2, and no
#: fade (thresholds 0-0.45 give the same result; 0.6 cost 5-7 CF for +0.3 dB)
DEFAULT_K = 2
DEFAULT_THRESHOLD = 0.0
#: confidence ramp: chroma grows from 0 at `threshold` to full at threshold + RAMP
RAMP = 0.1
#: per-pixel softmax temperature of the fusion weights over the references' confidences
FUSION_TAU = 0.05
#: gallery photos whose features are kept in memory between targets
REF_CACHE = 8


class DescriptorWeights(WeightsEnum):
    """Shipped weights of the retrieval descriptor (a linear head on pooled features)."""

    SCENES_V1 = WeightsSpec(
        filename="exemplar_descriptor_v1.safetensors",
        description="Linear head on the similarity network's pooled layer3/layer4 statistics, "
                    "trained to classify scene classes of photos_v1's train part.",
    )
    DEFAULT = SCENES_V1


@dataclass
class Reference:
    """A colour reference at the working size: L, a*b* and similarity features."""

    lightness: torch.Tensor
    ab: torch.Tensor
    feats: list[torch.Tensor]


@dataclass
class Candidates:
    """Per retrieved reference: a*b* [K, 2, h, w], confidence [K, h, w] and the files."""

    ab: torch.Tensor
    confidence: torch.Tensor
    files: list[tuple[Path, float]]


def confidence_map(similarities: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, h, w]: the correspondence confidence, the mean of the five levels' T->R
    similarities (matched patches' cosine), smoothed a little, at `size`."""
    conf = similarities[:, 0::2].mean(1, keepdim=True)
    conf = smooth_by_confidence(conf, torch.ones_like(conf[:, 0]), sigma=1.5)
    if tuple(conf.shape[-2:]) != tuple(size):
        conf = F.interpolate(conf, size=tuple(size), mode="bilinear", align_corners=False)
    return conf[:, 0]


def fuse(candidates: Candidates, k: int, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The first k references' a*b* fused per pixel by a softmax of their confidences, faded
    to neutral where the best confidence is below `threshold` (full chroma at threshold +
    RAMP). Returns a*b* [2, h, w] and the chroma gain [h, w] in [0, 1]."""
    ab, conf = candidates.ab[:k], candidates.confidence[:k]
    weights = torch.softmax(conf / FUSION_TAU, 0)
    fused = (weights[:, None] * ab).sum(0)
    gain = ((conf.max(0).values - threshold) / RAMP).clamp(0, 1)
    return fused * gain[None], gain


class ExemplarColorizer(ChromaColorizer):
    info = INFO

    def __init__(self, *, weights: Any = None, similarity_weights: Any = None,
                 device: str = "auto", working_size: int = 256, refine: bool = True,
                 gallery: Any = None, k: int = DEFAULT_K, threshold: float = DEFAULT_THRESHOLD,
                 descriptor_weights: Any = None, **options: Any) -> None:
        super().__init__(**options)
        self.working_size = check_working_size(working_size, minimum=64)
        self.refine = bool(refine)
        self.k = check_k(k)
        self.threshold = check_threshold(threshold)
        # checked now (a wrong folder is said at once), indexed on first use
        self.gallery_files = gallery_files(DEFAULT_GALLERY if gallery is None else gallery)
        self.descriptor_weights = descriptor_weights
        self._descriptor: DescriptorHead | None = None
        self._index: GalleryIndex | None = None
        self._refs: OrderedDict[Path, Reference] = OrderedDict()
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

    def _prepare_ref(self, lab: np.ndarray) -> Reference:
        ref_l = self._lightness(lab[..., 0])
        h, w = ref_l.shape[-2:]
        ref_ab = torch.from_numpy(np.stack([resize_map(lab[..., c], w, h) for c in (1, 2)])
                                  .astype(np.float32))[None].to(self.device)
        return Reference(ref_l, ref_ab, self._features(ref_l))

    def _chroma(self, tl: torch.Tensor, feats: list[torch.Tensor], ref: Reference
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """a*b* [1, 2, h, w] of one target from one reference (on the level-0 grid from the
        colour network, on the working grid with refine=False) and the correspondence's
        similarity maps [1, 10, h0, w0]."""
        corr = correspond(feats, ref.feats)
        if self.color_net is None:
            # training-free: the level-0 field upsampled to the working grid, the reference's
            # colours gathered there, smoothed where the match is confident
            field = upsample_field(corr.t_to_r, *tl.shape[-2:], ref.feats[0].shape[-2:],
                                   ref.lightness.shape[-2:])
            confidence = F.interpolate(corr.similarities[:, :1], size=tl.shape[-2:],
                                       mode="bilinear", align_corners=False)[:, 0]
            ab = smooth_by_confidence(warp(ref.ab, field), confidence, sigma=1.0)
        else:
            warped = warp_ab(ref.ab, corr.t_to_r, ref.feats[0].shape[-2:])
            ab = self.color_net(build_input(tl, warped, corr.similarities)).float() * AB_NORM
        return ab, corr.similarities

    @torch.inference_mode()
    def chroma_for(self, lum: np.ndarray, ref_l: torch.Tensor, ref_ab: torch.Tensor,
                   ref_feats: list[torch.Tensor]) -> np.ndarray:
        """a*b* (h, w, 2) for one target from one reference."""
        tl = self._lightness(lum)
        ab, _ = self._chroma(tl, self._features(tl), Reference(ref_l, ref_ab, ref_feats))
        return ab[0].permute(1, 2, 0).cpu().numpy()

    @torch.inference_mode()
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: np.ndarray | None,
                       hints: Any) -> list[np.ndarray]:
        if reference is None:
            out = []
            for lum in lightness:
                ab, _ = fuse(self.candidates(lum), self.k, self.threshold)
                out.append(ab.permute(1, 2, 0).cpu().numpy())
            return out
        ref = self._prepare_ref(reference)
        return [self.chroma_for(lum, ref.lightness, ref.ab, ref.feats) for lum in lightness]

    @torch.inference_mode()
    def predict_confidence(self, lightness: list[np.ndarray], *,
                           reference: np.ndarray | None) -> list[np.ndarray]:
        """The correspondence confidence (`confidence_map`: the five feature levels' mean
        cosine similarity of the matched patches, lightly smoothed), clipped to [0, 1]: of
        the given reference, or the best of the k retrieved ones. Only the correspondence
        runs with a given reference, not the colour network."""
        ref = self._prepare_ref(reference) if reference is not None else None
        out = []
        for lum in lightness:
            if ref is None:
                conf = self.candidates(lum).confidence[:self.k].max(0).values
            else:
                sims = correspond(self._features(self._lightness(lum)), ref.feats).similarities
                conf = confidence_map(sims, sims.shape[-2:])[0]
            out.append(conf.clamp(0, 1).cpu().numpy())
        return out

    # -- automatic references ------------------------------------------------------
    @torch.inference_mode()
    def candidates(self, lum: np.ndarray, k: int | None = None) -> Candidates:
        """The k (default: the colorizer's k) gallery photos most similar to a target's
        lightness, each one's a*b* for the target and its confidence map."""
        tl = self._lightness(lum)
        feats = self._features(tl)
        query = self.descriptor().embed(pooled(feats))[0].cpu().numpy()
        found = self.index().top_k(query, k or self.k)
        abs_, confs = [], []
        for path, _ in found:
            ab, sims = self._chroma(tl, feats, self._gallery_ref(path))
            abs_.append(ab[0])
            confs.append(confidence_map(sims, ab.shape[-2:])[0])
        return Candidates(torch.stack(abs_), torch.stack(confs), found)

    def descriptor(self) -> DescriptorHead:
        """The retrieval descriptor head (loaded on first use)."""
        if self._descriptor is None:
            self._descriptor, self.descriptor_meta = load_model(
                self.descriptor_weights, DescriptorWeights.DEFAULT.spec,
                lambda cfg: DescriptorHead(DescriptorConfig(**cfg)), self.device,
                backend=INFO.name)
        return self._descriptor

    def index(self) -> GalleryIndex:
        """The gallery's index: in memory, else the disk cache, else computed now."""
        if self._index is None:
            head = self.descriptor()

            def describe(path: Path) -> np.ndarray:
                ref = self._gallery_ref(path)
                return head.embed(pooled(ref.feats))[0].cpu().numpy()

            sha = self.index_weights_sha()
            self._index = shipped_index(self.gallery_files, sha, self.working_size)
            if self._index is None:
                key = index_key(self.gallery_files, sha, self.working_size)
                with torch.inference_mode():
                    self._index = load_or_build(self.gallery_files, key, describe)
        return self._index

    def index_weights_sha(self) -> str:
        """What a gallery's descriptors depend on besides its files: the SHA-256 of the
        descriptor weights and of the similarity weights whose features it pools."""
        self.descriptor()
        parts = [sha256_file(self.descriptor_meta["weights_file"]),
                 sha256_file(self.similarity_meta["weights_file"])]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def _gallery_ref(self, path: Path) -> Reference:
        """A gallery photo prepared as a reference (the last REF_CACHE kept in memory)."""
        if path in self._refs:
            self._refs.move_to_end(path)
            return self._refs[path]
        try:
            lab = prepare_reference(read_image(path), require_color=False)
        except ColorplugError as exc:
            raise InputError(f"gallery photo {str(path)!r} cannot be used: {exc}") from None
        ref = self._prepare_ref(lab)
        self._refs[path] = ref
        while len(self._refs) > REF_CACHE:
            self._refs.popitem(last=False)
        return ref

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
