import argparse

import numpy as np
import pytest
import torch

import colorplug
from colorplug import color
from colorplug.backends.cgan.model import (GeneratorConfig, GlobalDiscriminator,
                                           PatchDiscriminator, ResNetGenerator, UNetGenerator,
                                           build_generator, depth_for)
from colorplug.backends.cgan.train import CGANTask, add_arguments, load_encoder_weights
from colorplug.cli import main


def receptive_field(net: torch.nn.Module, size: int = 160) -> int:
    """Width of the input region that moves the centre output of a conv net."""
    net.eval()
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = net(x, torch.zeros(1, 2, size, size))
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    cols = (x.grad[0, 0].abs().sum(0) > 0).nonzero()
    return int(cols.max() - cols.min() + 1)


def test_unet_depth_follows_working_size_and_shapes():
    assert depth_for(256) == 8 and depth_for(128) == 7 and depth_for(512) == 8
    with pytest.raises(ValueError, match="power of two"):
        depth_for(100)
    g = UNetGenerator(depth_for(128), ngf=8).eval()
    assert len(g.down) == 7 and len(g.up) == 7
    out = g(torch.zeros(2, 1, 128, 128))
    assert out.shape == (2, 2, 128, 128) and out.abs().max() <= 1
    assert g(torch.zeros(1, 1, 256, 384)).shape == (1, 2, 256, 384)  # any multiple of 2**7
    n_dropout = sum(isinstance(m, torch.nn.Dropout) for m in g.modules())
    assert n_dropout == 3  # pix2pix: the three innermost decoder blocks


def test_patchgan_has_a_70_pixel_receptive_field_and_global_gives_one_logit():
    assert receptive_field(PatchDiscriminator(ndf=8)) == 70
    d = GlobalDiscriminator(ndf=8)
    assert d(torch.zeros(3, 1, 64, 64), torch.zeros(3, 2, 64, 64)).shape == (3, 1)


def test_resnet_generator_shapes_and_encoder_weights(tmp_path, monkeypatch):
    import torchvision

    g = ResNetGenerator("resnet18", decoder_width=64).eval()
    assert g(torch.zeros(1, 1, 96, 160)).shape == (1, 2, 96, 160)
    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    g2 = ResNetGenerator("resnet18", 64, encoder_weights=load_encoder_weights(str(path), "resnet18"))
    assert torch.equal(g2.stem[0].weight, ref.conv1.weight)
    assert torch.equal(g2.stages[3][1].conv2.weight, ref.layer4[1].conv2.weight)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_cache"))
    with pytest.raises(colorplug.InputError, match="not in torch's cache"):
        load_encoder_weights("imagenet", "resnet18")   # never downloads
    with pytest.raises(ValueError, match="unknown ResNet"):
        ResNetGenerator("resnet7")


def _args(**kw) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args([])
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def test_label_smoothing_and_noise():
    task = CGANTask(_args(label_noise=0.0))
    logits = torch.zeros(4, 1, 8, 8)
    assert torch.all(task._labels(logits, True) == 0.9)       # one-sided smoothing
    assert torch.all(task._labels(logits, False) == 0.0)
    task = CGANTask(_args(label_noise=1.0))                    # every label flipped
    assert torch.all(task._labels(logits, True) == 0.0)
    assert torch.all(task._labels(logits, False) == 0.9)


def test_mode_collapse_is_reported():
    task = CGANTask(_args())
    assert "mode collapse" in task.report({"val_spread": 1.0, "val_spread_truth": 12.0})
    assert task.report({"val_spread": 9.0, "val_spread_truth": 12.0}) is None


@pytest.mark.parametrize("extra", [
    ["--generator", "unet", "--ngf", "8", "--crop", "64"],
    ["--generator", "resnet", "--arch", "resnet18", "--crop", "64", "--discriminator", "global",
     "--gan-loss", "lsgan"],
])
def test_training_resume_and_inference(photo_dir, tmp_path, extra, capsys):
    out = tmp_path / "g.safetensors"
    common = ["train", "cgan", "--data", str(photo_dir), "--out", str(out), "--steps-per-epoch",
              "2", "--batch-size", "2", "--device", "cpu", "--quiet", "--val-fraction", "0.3",
              "--ndf", "8"] + extra
    assert main(common + ["--epochs", "1"]) == 0
    ckpt = torch.load(out.with_suffix(".ckpt"), weights_only=False)
    assert ckpt["task"]["d_opt"]["state"], "the discriminator's Adam state is checkpointed"
    assert main(common + ["--epochs", "2", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    from safetensors.torch import load_file

    keys = load_file(str(out)).keys()
    assert keys and not any(k.startswith(("d.", "g.")) for k in keys)  # the generator alone
    c = colorplug.get("cgan", weights=out, device="cpu")
    for shape in [(1, 1), (7, 13), (70, 45)]:
        gray = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
        rgb = c.colorize(gray)
        assert rgb.shape == shape + (3,)
        dl = color.lightness_from_rgb(rgb / 255.0) - color.lightness_from_gray(gray / 255.0)
        assert np.abs(dl).mean() < 1.0


def test_bad_crop_for_generator():
    with pytest.raises(colorplug.InputError, match="power of two"):
        CGANTask(_args(crop=100))
    with pytest.raises(colorplug.InputError, match="multiple of 32"):
        CGANTask(_args(generator="resnet", crop=100))


def test_shipped_generator_config_matches_its_weights():
    c = colorplug.get("cgan", device="cpu")
    cfg = GeneratorConfig(**c.metadata["config"])
    assert isinstance(c.model, type(build_generator(cfg)))
    assert c.metadata["training"]["steps"] > 0


def test_linear_decay_schedule_drives_both_optimizers():
    from colorplug.backends.cgan.train import LinearDecay

    g = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    d = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = LinearDecay([g, d], 2e-4, epochs=10, decay=4)
    lrs = []
    for _ in range(10):
        sched.step()
        lrs.append(round(g.param_groups[0]["lr"] / 2e-4, 4))
        assert d.param_groups[0]["lr"] == g.param_groups[0]["lr"]
    assert lrs == [1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 0]
    restored = LinearDecay([g], 2e-4, epochs=10, decay=4)
    restored.load_state_dict(sched.state_dict())
    assert restored.factor() == 0


def test_wrong_or_corrupt_encoder_weights_are_clear_errors(tmp_path):
    import torchvision

    r18 = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), r18)
    with pytest.raises(colorplug.WeightsError, match="weights for the resnet34 encoder do not fit"):
        ResNetGenerator("resnet34", 64, encoder_weights=load_encoder_weights(str(r18), "resnet34"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(colorplug.WeightsError, match="cannot read encoder weights"):
        load_encoder_weights(str(bad), "resnet18")
