"""The zoo backends: colorplug ChromaColorizers around the published networks.

Each follows its authors' inference pipeline for what the network sees, and colorplug's
pipeline for the rest (full-resolution L* kept, a*b* upsampled bilinearly, gamut mapping):

* eccv16 / siggraph17 (richzhang/colorization ``util.preprocess_img``/``postprocess_tens``):
  the image is resized to 256 x 256 (aspect ratio not kept) with PIL bicubic, its L* goes
  in, the 256 x 256 a*b* comes out and is resized bilinearly to the input size.
* DDColor (piddnad/DDColor ``ColorizationPipeline``): the gray image is resized to
  512 x 512 bilinearly (as cv2.resize INTER_LINEAR: no antialiasing), fed as gray RGB in
  [0, 1]; its 512 x 512 a*b* is resized to the input size.

Differences from the authors' scripts (documented in docs/backends/zoo.md): the resize
runs on float gray values (theirs on 8-bit RGB); a*b* is upsampled bilinearly for DDColor
(theirs: nearest); out-of-gamut colours lose chroma, not lightness (theirs: clipped RGB).
"""
from __future__ import annotations

import abc
import os
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

import colorplug
from colorplug import color
from colorplug.pipeline import ChromaColorizer
from colorplug.runtimes import (OnnxGraph, check_runtime, exported_network, require,
                                runtime_device)

from . import catalog, ddcolor, eccv16, siggraph17
from . import hints as hint_maps

ARCHITECTURES = {
    "eccv16": (eccv16.build, eccv16.load_published),
    "siggraph17": (siggraph17.build, siggraph17.load_published),
    "ddcolor-large": (lambda: ddcolor.build("large"), ddcolor.load_published),
    "ddcolor-tiny": (lambda: ddcolor.build("tiny"), ddcolor.load_published),
}


def missing_weights_message(backend: str) -> str:
    """The zoo's own addition to a weights error: the published file by path, the way
    that needs neither the cache nor a download by colorplug."""
    w = catalog.for_backend(backend)
    digest = (f"SHA-256 starting {w.sha256}" if w.sha256_is_prefix else f"SHA-256 {w.sha256}")
    return (f"backend {backend!r} runs the authors' published file {w.filename!r} "
            f"({w.approx_size}, {w.licence}); or download {w.url} ({digest}) yourself and "
            f"pass its path: weights=PATH (CLI: --backend '{backend}?weights=PATH').")


def cached_weights(backend: str, weights: Any) -> Any:
    """The verified cache entry (`colorplug.weights.ResolvedWeights`) the backend reads for
    ``weights=None``, the weights' name or a `WeightsSpec` of one's own hosted copy (the
    cache downloads, verifies and converts the published file on first use); None for a
    path of the published file itself."""
    from colorplug import weights as cw

    entry = catalog.for_backend(backend)
    if weights is None or weights == entry.name or isinstance(weights, cw.WeightsSpec):
        spec = weights if isinstance(weights, cw.WeightsSpec) else catalog.weights_spec(entry)
        try:
            return cw.resolve(spec, None)
        except colorplug.WeightsError as exc:
            raise colorplug.WeightsError(f"{exc}\n{missing_weights_message(backend)}") from None
    if not isinstance(weights, (str, os.PathLike)):
        raise colorplug.WeightsError(f"backend {backend!r} takes weights as the path of the "
                                     f"published file, not {type(weights).__name__}")
    return None


def load_network(backend: str, weights: Any, device: torch.device) -> torch.nn.Module:
    """The backend's network, loaded strictly: from colorplug's weights cache (see
    `cached_weights`) or, with a path, from the published file itself."""
    from colorplug import weights as cw

    resolved = cached_weights(backend, weights)
    build, load = ARCHITECTURES[catalog.for_backend(backend).architecture]
    if resolved is not None:
        from .published import fold_spectral_norm, load_strict

        state, _ = cw.load_file(resolved)
        source = repr(str(resolved.path))
        net = load_strict(build(), fold_spectral_norm(state, source=source), source=source)
        return net.to(device)
    return load(build(), os.fspath(weights)).to(device)


def weights_sha256(backend: str, weights: Any) -> str:
    """The SHA-256 of the weights file the backend reads (the key of its ONNX export):
    the cache's converted file, or the published file given by path."""
    from colorplug.weights import sha256_file

    resolved = cached_weights(backend, weights)
    if resolved is not None and resolved.sha256 and len(resolved.sha256) == 64:
        return resolved.sha256.lower()
    path = resolved.path if resolved is not None else os.fspath(weights)
    if not os.path.isfile(path):
        raise colorplug.WeightsError(f"weights file {str(path)!r} does not exist")
    return sha256_file(path)


class NetworkRunner(abc.ABC):
    """What the zoo colorizers share: the network loaded for torch, or exported and run
    by onnxruntime / openvino (the ``runtime`` option, `colorplug.runtimes`), at the
    static input shape the backend feeds it."""

    info: colorplug.BackendInfo

    def setup_network(self, weights: Any, device: str, runtime: str, shape: str) -> None:
        """Check `runtime` and load the network for it (`shape`: the export's input size)."""
        self.runtime = check_runtime(runtime, self.info.name)
        if self.runtime != "torch":
            require(self.runtime)  # before anything is loaded
        self.device = runtime_device(self.runtime, device)
        self._weights = weights
        self.net: torch.nn.Module | None = None
        self.exported = None
        if self.runtime == "torch":
            self.net = load_network(self.info.name, weights, self.device)
        else:  # the torch network is built only if the export is not cached yet
            self.exported = exported_network(
                self.runtime, self.onnx_graph, backend=self.info.name, shape=shape,
                name=catalog.for_backend(self.info.name).architecture,
                weights_sha256=weights_sha256(self.info.name, self._weights))

    def torch_network(self) -> torch.nn.Module:
        """The torch network (loaded on the CPU now if the backend runs another runtime)."""
        if self.net is not None:
            return self.net
        return load_network(self.info.name, self._weights, torch.device("cpu"))

    @abc.abstractmethod
    def example_inputs(self) -> tuple[tuple[torch.Tensor, ...], tuple[str, ...]]:
        """Inputs of the network's shape for the export, and their names (per model)."""

    def onnx_graph(self) -> OnnxGraph:
        """The network at the backend's input size, for ``torch.onnx.export``."""
        inputs, names = self.example_inputs()
        return OnnxGraph(self.torch_network().cpu().eval(), inputs, names, ("ab",),
                         what=f"backend {self.info.name!r}")


def _check_finite(ab: np.ndarray, backend: str) -> np.ndarray:
    if not np.isfinite(ab).all():
        raise colorplug.ColorplugError(f"backend {backend!r}: the network gave non-finite "
                                       "a*b* (NaN or inf); the weights file is probably "
                                       "damaged or not this model's")
    return ab


class ZhangColorizer(NetworkRunner, ChromaColorizer):
    """eccv16 and siggraph17: L* at 256 x 256 (PIL bicubic, as the authors) -> a*b*."""

    def __init__(self, info: colorplug.BackendInfo, *, weights: Any = None,
                 device: str = "auto", working_size: int = 256, runtime: str = "torch",
                 **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(working_size, int) or isinstance(working_size, bool) \
                or working_size < 8 or working_size % 8:
            raise colorplug.InputError(f"working_size must be a multiple of 8, at least 8; "
                                       f"got {working_size!r}")
        self.info = info
        self.working_size = working_size
        self.setup_network(weights, device, runtime, f"{working_size}x{working_size}")

    def example_inputs(self) -> tuple[tuple[torch.Tensor, ...], tuple[str, ...]]:
        s = self.working_size
        light = torch.rand(1, 1, s, s) * 100
        if self.info.name == "siggraph17":  # hints always given (zeros: none)
            return (light, torch.zeros(1, 2, s, s), torch.zeros(1, 1, s, s)), \
                ("lightness", "hint_ab", "hint_mask")
        return (light,), ("lightness",)

    def network_lightness(self, lum: np.ndarray) -> np.ndarray:
        """The L* the network sees: the gray image resized with PIL bicubic, as the authors."""
        from PIL import Image

        s = self.working_size
        gray = Image.fromarray(color.gray_from_lightness(lum).astype(np.float32), mode="F")
        small = np.asarray(gray.resize((s, s), resample=Image.BICUBIC), dtype=np.float32)
        return color.lightness_from_gray(np.clip(small, 0.0, 1.0))

    @torch.inference_mode()
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: Any,
                       hints: Any) -> list[np.ndarray]:
        out = []
        s = self.working_size
        for lum in lightness:
            light = torch.from_numpy(self.network_lightness(lum))[None, None].to(self.device)
            if hints is not None:
                ab_full, mask_full = hint_maps.full_resolution(hints, lum.shape)
                ab, mask = hint_maps.at_size(ab_full, mask_full, s, s)
                ab_t = torch.from_numpy(ab)[None].to(self.device)
                mask_t = torch.from_numpy(mask)[None].to(self.device)
            elif self.exported is not None and self.info.name == "siggraph17":
                ab_t, mask_t = torch.zeros(1, 2, s, s), torch.zeros(1, 1, s, s)
            if self.exported is not None:
                args = [light] + ([ab_t, mask_t] if self.info.name == "siggraph17" else [])
                pred = torch.from_numpy(self.exported(*(t.numpy() for t in args))[0])
            elif hints is not None:
                pred = self.net(light, ab_t, mask_t)
            else:
                pred = self.net(light)
            ab_out = pred[0].permute(1, 2, 0).float().cpu().numpy()
            out.append(_check_finite(ab_out, self.info.name))
        return out


class DDColorColorizer(NetworkRunner, ChromaColorizer):
    """DDColor: gray as RGB at input_size x input_size (bilinear, as cv2) -> a*b*."""

    def __init__(self, info: colorplug.BackendInfo, *, weights: Any = None,
                 device: str = "auto", input_size: int = 512, runtime: str = "torch",
                 **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(input_size, int) or isinstance(input_size, bool) \
                or input_size < 32 or input_size % 32:
            raise colorplug.InputError(f"input_size must be a multiple of 32, at least 32; "
                                       f"got {input_size!r}")
        self.info = info
        self.input_size = input_size
        self.setup_network(weights, device, runtime, f"{input_size}x{input_size}")

    def example_inputs(self) -> tuple[tuple[torch.Tensor, ...], tuple[str, ...]]:
        s = self.input_size
        return (torch.rand(1, 1, s, s).expand(1, 3, s, s).contiguous(),), ("rgb",)

    @torch.inference_mode()
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: Any,
                       hints: Any) -> list[np.ndarray]:
        out = []
        s = self.input_size
        for lum in lightness:
            gray = torch.from_numpy(color.gray_from_lightness(lum).astype(np.float32))
            gray = F.interpolate(gray[None, None], size=(s, s), mode="bilinear",
                                 align_corners=False, antialias=False)
            rgb = gray.expand(1, 3, s, s).to(self.device)
            if self.exported is not None:
                ab = self.exported(rgb.numpy())[0][0].transpose(1, 2, 0)
            else:
                ab = self.net(rgb)[0].permute(1, 2, 0).float().cpu().numpy()
            out.append(_check_finite(ab, self.info.name))
        return out


def build_colorizer(info: colorplug.BackendInfo, **kw: Any) -> ChromaColorizer:
    cls = DDColorColorizer if info.name.startswith("ddcolor") else ZhangColorizer
    return cls(info, **kw)
