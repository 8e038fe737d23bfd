"""The plugin module named by the ``colorplug`` entry point: registers the zoo backends.

Only colorplug's public API is used; torch and the networks are imported when a backend
is built, so discovering the plugin stays cheap.
"""
from __future__ import annotations

from typing import Any

import colorplug
from colorplug.protocol import RUNTIME_HELP

from .catalog import WEIGHTS, for_backend, weights_spec

_ZHANG = "Zhang et al."
_DDCOLOR = "Kang et al. ICCV 2023"


def _info(name: str, description: str, working_size: int, **kw: Any) -> colorplug.BackendInfo:
    w = for_backend(name)
    if name.startswith("ddcolor"):  # DDColor's own name for it, and its encoder's stride
        options = {"input_size": "side of the square the network sees (multiple of 32, "
                                 f">= 32; {working_size} as the authors)"}
        multiple = 32
    else:
        options = {"working_size": "side of the square the network sees (multiple of 8, "
                                   f">= 8; {working_size} as the authors)"}
        multiple = 8
    options["runtime"] = RUNTIME_HELP  # onnx / openvino: the network exported, on the CPU
    return colorplug.BackendInfo(
        name=name, description=description, working_size=working_size, options=options,
        extra={"weights": w.name, "weights_url": w.url, "weights_licence": w.licence,
               "weights_size": w.approx_size, "paper": w.paper, "size_multiple": multiple},
        **kw)


INFOS = {i.name: i for i in [
    _info("eccv16", f"Colorful Image Colorization ({_ZHANG}, ECCV 2016): classification over "
          "313 a*b* bins, ImageNet-trained; published weights (BSD-2-Clause).", 256),
    _info("siggraph17", f"Real-Time User-Guided Image Colorization ({_ZHANG}, SIGGRAPH 2017): "
          "ImageNet-trained U-Net; optional colour hints steer it; published weights "
          "(BSD-2-Clause).", 256, supports_hints=True),
    _info("ddcolor", f"DDColor-L ({_DDCOLOR}), the authors' recommended 'modelscope' weights: "
          "ConvNeXt-L encoder with dual pixel/colour decoders (Apache-2.0).", 512),
    _info("ddcolor-artistic", f"DDColor-L ({_DDCOLOR}), 'artistic' weights: ImageNet plus "
          "artistic images, no colourfulness loss (Apache-2.0).", 512),
    _info("ddcolor-paper", f"DDColor-L ({_DDCOLOR}), the paper's ImageNet weights "
          "(Apache-2.0).", 512),
    _info("ddcolor-tiny", f"DDColor-T ({_DDCOLOR}), ConvNeXt-T encoder, the paper's ImageNet "
          "weights; 4x smaller than DDColor-L (Apache-2.0).", 512),
]}


def _factory(name: str):  # type: ignore[no-untyped-def]
    def build(*, weights: Any = None, device: str = "auto", **options: Any) -> Any:
        from .colorizers import build_colorizer

        return build_colorizer(INFOS[name], weights=weights, device=device, **options)

    build.__name__ = f"build_{name.replace('-', '_')}"
    return build


@colorplug.hookimpl
def colorplug_register_colorizers(register):  # type: ignore[no-untyped-def]
    for name, info in INFOS.items():
        register(name, _factory(name), info)


@colorplug.hookimpl
def colorplug_register_weights(register):  # type: ignore[no-untyped-def]
    """The published files, so `colorplug weights list/fetch/import` know them."""
    for entry in WEIGHTS.values():
        register(weights_spec(entry))
