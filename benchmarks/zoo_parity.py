"""colorplug-zoo: network parity with the authors' code, with random weights.

    python benchmarks/zoo_parity.py --ddcolor PATH/TO/DDColor \
        --colorization PATH/TO/colorization [--size 256] [--large] [--out FILE.json]

PATH/TO/DDColor: a checkout of github piddnad/DDColor (``ddcolor/model.py``, ``basicsr/``);
PATH/TO/colorization: a checkout of github richzhang/colorization whose
``colorizers/siggraph17.py`` has the ORIGINAL layout (the one the published
``siggraph17-df00044c.pth`` fits). Either may be left out.

For each network, the authors' module is built with random weights (BatchNorm statistics
randomised too, so they matter), its state dict is written in the published layout
(a bare state dict for eccv16/siggraph17, ``{'params': ...}`` with spectral-norm keys for
DDColor), our network loads that file with ``load_published``, and both run on the same
random input. Prints the largest absolute difference of the outputs (a*b* units).
Needs `pip install -e plugins/colorplug-zoo`; their code is imported from the given paths
and is never copied here.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _common import save_json


def randomise_batchnorm(net, gen) -> None:
    import torch

    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def max_diff(a, b) -> float:
    return float((a.double() - b.double()).abs().max())


def zhang(checkout: str, size: int, folder: str) -> dict:
    import torch

    sys.path.insert(0, checkout)
    from colorizers.eccv16 import ECCVGenerator
    from colorizers.siggraph17 import SIGGRAPHGenerator

    from colorplug_zoo import eccv16, siggraph17

    gen = torch.Generator().manual_seed(0)
    out = {}
    for name, theirs_cls, ours_mod in (("eccv16", ECCVGenerator, eccv16),
                                       ("siggraph17", SIGGRAPHGenerator, siggraph17)):
        theirs = theirs_cls()
        randomise_batchnorm(theirs, gen)
        if name == "eccv16":  # a sharper bin distribution, so the output spans real a*b*
            with torch.no_grad():
                theirs.model8[-1].weight.mul_(50)
                theirs.model_out.weight.normal_(0, 0.5, generator=gen)
        theirs.eval()
        path = os.path.join(folder, f"{name}.pth")
        torch.save(theirs.state_dict(), path)  # the published layout: a bare state dict
        ours = ours_mod.load_published(ours_mod.build(), path)
        light = torch.rand(1, 1, size, size, generator=gen) * 100
        args = [light]
        if name == "siggraph17":
            mask = (torch.rand(1, 1, size, size, generator=gen) < 0.01).float()
            ab = (torch.rand(1, 2, size, size, generator=gen) * 160 - 80) * mask
            args += [ab, mask]
        with torch.no_grad():
            a, b = theirs(*args), ours(*args)
            out[name] = {"max_abs_diff": max_diff(a, b), "shape": list(a.shape),
                         "output_range": float(a.abs().max())}
            if name == "siggraph17":
                out[name + " (no hints)"] = {"max_abs_diff": max_diff(theirs(light), ours(light))}
    return out


def ddcolor(checkout: str, size: int, folder: str, sizes: list[str]) -> dict:
    import torch

    sys.path.insert(0, checkout)
    from ddcolor.model import DDColor as Theirs

    from colorplug_zoo import ddcolor as ours_mod

    gen = torch.Generator().manual_seed(1)
    out = {}
    for model_size in sizes:
        # as the authors' build_ddcolor_model configures it
        theirs = Theirs(encoder_name="convnext-t" if model_size == "tiny" else "convnext-l",
                        decoder_name="MultiScaleColorDecoder", input_size=[size, size],
                        num_output_channels=2, last_norm="Spectral", do_normalize=False,
                        num_queries=100, num_scales=3, dec_layers=9)
        # a few spectral-norm power iterations (train-mode forwards), so that the stored
        # u, v give sigma near the largest singular value as in a trained file
        theirs.train()
        with torch.no_grad():
            for _ in range(3):
                theirs(torch.rand(1, 3, 64, 64, generator=gen))
        randomise_batchnorm(theirs, gen)
        theirs.eval()
        path = os.path.join(folder, f"ddcolor_{model_size}.pth")
        torch.save({"params": theirs.state_dict()}, path)  # the published .pth layout
        ours = ours_mod.load_published(ours_mod.build(model_size), path)
        gray = torch.rand(1, 1, size, size, generator=gen).expand(1, 3, size, size).contiguous()
        with torch.no_grad():
            a, b = theirs(gray), ours(gray)
        out[f"ddcolor-{model_size}"] = {"max_abs_diff": max_diff(a, b), "shape": list(a.shape),
                                        "output_range": float(a.abs().max())}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ddcolor", help="checkout of github piddnad/DDColor")
    p.add_argument("--colorization", help="checkout of github richzhang/colorization")
    p.add_argument("--size", type=int, default=256, help="input side (multiple of 32)")
    p.add_argument("--large", action="store_true", help="DDColor-L too (slow on CPU)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the authors' constructors initialise from the global generator
    results: dict = {"input_side": args.size}
    with tempfile.TemporaryDirectory() as folder:
        if args.colorization:
            results.update(zhang(os.path.abspath(args.colorization), args.size, folder))
        if args.ddcolor:
            sizes = ["tiny", "large"] if args.large else ["tiny"]
            results.update(ddcolor(os.path.abspath(args.ddcolor), args.size, folder, sizes))
    for name, r in results.items():
        if isinstance(r, dict):
            print(f"{name:22s} max |ours - theirs| = {r['max_abs_diff']:.3g}"
                  + (f"  (outputs up to {r['output_range']:.3g})" if "output_range" in r else ""))
    save_json(args.out, results)


if __name__ == "__main__":
    main()
