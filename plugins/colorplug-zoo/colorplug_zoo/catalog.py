"""The published weights files, declared as data in one place.

Each entry says where the authors publish the file, its SHA-256 (full, or a prefix where
only a prefix is published, as torch.hub's ``-<prefix>.pth`` names do), its size, the
licence of the weights and the layout the file has, so a downloader (colorplug's weights
cache) and `load_published` need nothing else. Where each value was confirmed is in
docs/backends/zoo.md.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedWeights:
    """One weights file exactly as its authors publish it."""

    name: str            #: the name `colorplug weights fetch NAME` takes
    backend: str         #: the colorplug backend that uses it
    url: str
    sha256: str          #: 64 hex digits, or a prefix (``sha256_is_prefix``)
    size: int | None     #: bytes; None where only an approximate size is published
    approx_size: str     #: human-readable size
    licence: str
    layout: str          #: "state_dict" or "params" ({'params': state_dict}); see load_published
    architecture: str    #: "eccv16", "siggraph17", "ddcolor-large", "ddcolor-tiny"
    sha256_is_prefix: bool = False
    paper: str = ""
    source: str = ""     #: where the SHA-256 and size were confirmed

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


_ZHANG_PAPERS = {
    "eccv16": "Zhang, Isola, Efros: Colorful Image Colorization, ECCV 2016",
    "siggraph17": "Zhang, Zhu, Isola, Geng, Lin, Yu, Efros: Real-Time User-Guided Image "
                  "Colorization with Learned Deep Priors, SIGGRAPH 2017",
}
_DDCOLOR_PAPER = ("Kang, Yang, Ouyang, Ren, Li, Xie: DDColor: Towards Photo-Realistic Image "
                  "Colorization via Dual Decoders, ICCV 2023")
_DDCOLOR_HF = "https://huggingface.co/piddnad/DDColor-models/resolve/main/"
_HF_SOURCE = ("Git LFS pointer of huggingface.co/piddnad/DDColor-models (commit 1969bc5 "
              "'update models', and 8c3ddc6 for the tiny file)")

WEIGHTS: dict[str, PublishedWeights] = {w.name: w for w in [
    PublishedWeights(
        name="eccv16", backend="eccv16",
        url="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
        sha256="9b330a0b", sha256_is_prefix=True, size=None, approx_size="129 MB",
        licence="BSD-2-Clause", layout="state_dict", architecture="eccv16",
        paper=_ZHANG_PAPERS["eccv16"],
        source="torch.hub file-name convention (the authors load it with check_hash=True); "
               "only the 8-digit prefix is published"),
    PublishedWeights(
        name="siggraph17", backend="siggraph17",
        url="https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
        sha256="df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66",
        size=None, approx_size="137 MB",
        licence="BSD-2-Clause", layout="state_dict", architecture="siggraph17",
        paper=_ZHANG_PAPERS["siggraph17"],
        source="issue 14 (full digest); its first 8 digits match the torch.hub file name"),
    PublishedWeights(
        name="ddcolor-modelscope", backend="ddcolor",
        url=_DDCOLOR_HF + "ddcolor_modelscope.pth",
        sha256="17c460d7e55b32a598370621d77173be59e03c24b0823f06821db23a50c263ce",
        size=None, approx_size="912 MB",
        licence="Apache-2.0", layout="params", architecture="ddcolor-large",
        paper=_DDCOLOR_PAPER, source=_HF_SOURCE),
    PublishedWeights(
        name="ddcolor-artistic", backend="ddcolor-artistic",
        url=_DDCOLOR_HF + "ddcolor_artistic.pth",
        sha256="a591ee5beedad36de703d8977e92d0c30c1eedc6453fd1b300f3b460842a23a9",
        size=911950059, approx_size="912 MB",
        licence="Apache-2.0", layout="params", architecture="ddcolor-large",
        paper=_DDCOLOR_PAPER, source=_HF_SOURCE),
    PublishedWeights(
        name="ddcolor-paper", backend="ddcolor-paper",
        url=_DDCOLOR_HF + "ddcolor_paper.pth",
        sha256="789781789db1bafc2165e1cf9658580f871cce64a81901ec49127877813f10b9",
        size=None, approx_size="912 MB",
        licence="Apache-2.0", layout="params", architecture="ddcolor-large",
        paper=_DDCOLOR_PAPER, source=_HF_SOURCE),
    PublishedWeights(
        name="ddcolor-paper-tiny", backend="ddcolor-tiny",
        url=_DDCOLOR_HF + "ddcolor_paper_tiny.pth",
        sha256="81dd643904f4664c3718513e3320ae3db0c567f0d3e18398606659adee7bfc17",
        size=220393145, approx_size="220 MB",
        licence="Apache-2.0", layout="params", architecture="ddcolor-tiny",
        paper=_DDCOLOR_PAPER, source=_HF_SOURCE),
]}


def for_backend(backend: str) -> PublishedWeights:
    """The weights declaration a backend uses by default."""
    for w in WEIGHTS.values():
        if w.backend == backend:
            return w
    raise KeyError(backend)


def weights_spec(w: PublishedWeights):  # -> colorplug.weights.WeightsSpec
    """The entry as colorplug's weights cache takes it (download, verify, convert once)."""
    from colorplug.weights import WeightsSpec

    return WeightsSpec(name=w.name, filename=w.filename, url=w.url, sha256=w.sha256,
                       sha256_is_prefix=w.sha256_is_prefix, size=w.size, license=w.licence,
                       source_format="pth",
                       state_key="params" if w.layout == "params" else None,
                       description=f"{w.paper} ({w.approx_size})")
