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


def test_image(width: int = 300, height: int = 200):
    """A gray photo (scikit-image's camera man), 8-bit, at width x height."""
    import numpy as np
    import skimage.data
    from PIL import Image

    return np.asarray(Image.fromarray(skimage.data.camera()).resize((width, height),
                                                                    Image.BICUBIC))


def compare_rgb(ours_rgb, theirs_rgb) -> dict:
    """Lab differences of two sRGB images in [0, 1]: a*b* (mean, 99th percentile, max), L*."""
    import numpy as np

    from colorplug import color

    a, b = color.rgb_to_lab(ours_rgb), color.rgb_to_lab(theirs_rgb)
    dab = np.hypot(*(a[..., 1:] - b[..., 1:]).transpose(2, 0, 1))
    return {"dab_mean": float(dab.mean()), "dab_p99": float(np.percentile(dab, 99)),
            "dab_max": float(dab.max()), "dL_mean": float(np.abs(a[..., 0] - b[..., 0]).mean()),
            "chroma_mean": float(np.hypot(b[..., 1], b[..., 2]).mean())}


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
        theirs.eval()
        with torch.no_grad():  # scale the last layer so a*b* has a photo's spread (std 25)
            last = theirs.model_out if name == "eccv16" else theirs.model_out[0]
            if name == "eccv16":
                theirs.model8[-1].weight.mul_(50)   # a sharper bin distribution
            probe = theirs(torch.rand(1, 1, 64, 64, generator=gen) * 100)
            if name == "eccv16":
                last.weight.mul_(25 / float(probe.std()))
            else:  # inside tanh: scale its input
                last.weight.mul_(0.3 / float((probe / 110).std()))
                last.bias.zero_()
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
        if name == "eccv16":  # whole pipelines: colorizers/util.py vs the colorplug backend
            import numpy as np

            import colorplug
            from colorizers.util import postprocess_tens, preprocess_img

            gray = test_image()
            orig_l, rs_l = preprocess_img(np.repeat(gray[..., None], 3, -1), HW=(256, 256))
            with torch.no_grad():
                theirs_rgb = postprocess_tens(orig_l, theirs(rs_l))
            backend = colorplug.get("eccv16", weights=path, device="cpu",
                                    output_dtype="float32")
            ours_rgb = backend.colorize(gray)
            out["eccv16 pipeline (300x200 photo)"] = compare_rgb(ours_rgb, theirs_rgb)
            # before Lab -> sRGB: the L* the network sees, and the a*b* field at full size
            from colorplug import color
            from colorplug.pipeline import upsample_rows

            lum = color.lightness_from_gray(gray / 255.0)
            ours_l = backend.network_lightness(lum)
            ours_ab = upsample_rows(backend.predict_chroma([lum], reference=None, hints=None)[0],
                                    *gray.shape, 0, gray.shape[0])
            with torch.no_grad():
                theirs_ab = torch.nn.functional.interpolate(
                    theirs(rs_l), size=gray.shape, mode="bilinear")[0].permute(1, 2, 0).numpy()
            dab = np.hypot(*(ours_ab - theirs_ab).transpose(2, 0, 1))
            out["eccv16 pipeline, before sRGB"] = {
                "network_input_L_max_diff": float(np.abs(ours_l - rs_l[0, 0].numpy()).max()),
                "network_input_L_mean_diff": float(np.abs(ours_l - rs_l[0, 0].numpy()).mean()),
                "dab_mean": float(dab.mean()), "dab_max": float(dab.max())}
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
        with torch.no_grad():  # scale the colour embeddings so a*b* has a photo's spread
            emb = theirs.decoder.color_decoder.color_embed.layers[-1]
            probe = theirs(torch.rand(1, 3, 64, 64, generator=gen))
            emb.weight.mul_(25 / float(probe.std()))
            emb.bias.mul_(25 / float(probe.std()))
        path = os.path.join(folder, f"ddcolor_{model_size}.pth")
        torch.save({"params": theirs.state_dict()}, path)  # the published .pth layout
        ours = ours_mod.load_published(ours_mod.build(model_size), path)
        gray = torch.rand(1, 1, size, size, generator=gen).expand(1, 3, size, size).contiguous()
        with torch.no_grad():
            a, b = theirs(gray), ours(gray)
        out[f"ddcolor-{model_size}"] = {"max_abs_diff": max_diff(a, b), "shape": list(a.shape),
                                        "output_range": float(a.abs().max())}
        if model_size == "tiny":  # whole pipelines: ddcolor/pipeline.py vs the colorplug backend
            import numpy as np

            import colorplug
            from ddcolor.pipeline import ColorizationPipeline

            backend = colorplug.get("ddcolor-tiny", weights=path, device="cpu",
                                    input_size=size, output_dtype="float32")
            pipeline = ColorizationPipeline(theirs, input_size=size, device=torch.device("cpu"))
            for w, h in ((size, size), (300, 200)):  # no resizing at all; resized both ways
                gray = test_image(w, h)
                bgr = pipeline.process(np.repeat(gray[..., None], 3, -1))
                out[f"ddcolor-tiny pipeline ({w}x{h} photo)"] = compare_rgb(
                    backend.colorize(gray), bgr[..., ::-1] / 255.0)
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
        if isinstance(r, dict) and "max_abs_diff" in r:
            print(f"{name:22s} network: max |ours - theirs| = {r['max_abs_diff']:.3g}"
                  + (f"  (outputs up to {r['output_range']:.3g})" if "output_range" in r else ""))
        elif isinstance(r, dict) and "network_input_L_max_diff" in r:
            print(f"{name}: network input L* diff mean {r['network_input_L_mean_diff']:.3f}, "
                  f"max {r['network_input_L_max_diff']:.3f}; "
                  f"a*b* field |delta| mean {r['dab_mean']:.3f}, max {r['dab_max']:.3f}")
        elif isinstance(r, dict):
            print(f"{name}: |delta a*b*| mean {r['dab_mean']:.2f}, 99th pct {r['dab_p99']:.2f}, "
                  f"max {r['dab_max']:.2f}; |delta L*| mean {r['dL_mean']:.2f} (their mean "
                  f"chroma {r['chroma_mean']:.1f})")
    save_json(args.out, results)


if __name__ == "__main__":
    main()
