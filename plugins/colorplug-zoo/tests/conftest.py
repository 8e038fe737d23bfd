"""Shared fixtures of the zoo's tests: checkpoints written in each published layout, with
random weights made here (no download)."""
from __future__ import annotations

import pytest
import torch

from colorplug_zoo import catalog, ddcolor, eccv16, siggraph17


def randomise_batchnorm(net: torch.nn.Module, seed: int = 0) -> None:
    """BatchNorm statistics that are not the identity, so loading them is tested."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    """Random-init checkpoints written in each published layout, and the nets they came from."""
    folder = tmp_path_factory.mktemp("published")
    torch.manual_seed(0)
    out = {}
    for name, mod in (("eccv16", eccv16), ("siggraph17", siggraph17)):
        net = mod.build()
        randomise_batchnorm(net)
        if name == "eccv16":  # a peaked bin distribution: a*b* of a photo's size, not ~0
            with torch.no_grad():
                net.model8[-1].weight.mul_(50)
                net.model_out.weight.normal_(0, 1.5)
        path = folder / catalog.WEIGHTS[name].filename
        torch.save(net.eval().state_dict(), path)          # bare state dict, as published
        out[name] = (path, net)
    tiny = ddcolor.build("tiny")
    randomise_batchnorm(tiny)
    authors = ddcolor.with_spectral_norm(tiny)               # the authors' parametrisation
    authors.train()
    with torch.no_grad():                                    # power iterations: u, v set
        for _ in range(2):
            authors(torch.rand(1, 3, 64, 64))
    randomise_batchnorm(authors, seed=1)
    authors.eval()
    with torch.no_grad():  # scale the colour embeddings: a*b* of a photo's size (std 25)
        emb = authors.decoder.color_decoder.color_embed.layers[-1]
        k = 25 / float(authors(torch.rand(1, 3, 64, 64)).std())
        emb.weight.mul_(k)
        emb.bias.mul_(k)
    path = folder / "ddcolor_paper_tiny.pth"
    torch.save({"params": authors.state_dict()}, path)     # BasicSR's {'params': ...}
    out["ddcolor-tiny"] = (path, authors)
    bare = folder / "pytorch_model.bin"
    torch.save(authors.state_dict(), bare)                 # the per-model HF repos' layout
    out["ddcolor-tiny-bare"] = (bare, authors)
    return out
