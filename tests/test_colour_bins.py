"""Colour as classification: bins, soft targets, rebalancing, annealed mean, and the fusion /
cgan backends decoding bin logits (temperature, saturation)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import colorplug
from colorplug import color, colour_bins, weights
from colorplug.backends.cgan.colorizer import CGANWeights
from colorplug.backends.cgan.model import GeneratorConfig, build_generator
from colorplug.backends.fusion.colorizer import FusionWeights
from colorplug.backends.fusion.model import FusionConfig, FusionNet


@pytest.fixture(scope="module")
def centres():
    return torch.from_numpy(colour_bins.in_gamut_bins())


def test_bins_are_the_in_gamut_cells_of_a_10_grid(centres):
    c = centres.numpy()
    assert len(c) == 251  # of 23 x 23 cells; Zhang et al. report 313 on their probe
    assert np.all(np.mod(c, 10) == 0)
    assert [0, 0] in c.tolist()
    # a neutral-ish red (L 50, a 60, b 40) is in gamut: its cell is kept; a*b* (-100, 100)
    # (a green-yellow no sRGB colour reaches) is not
    assert [60, 40] in c.tolist() and [-100, 100] not in c.tolist()
    lin = color.lab_to_linear(np.array([[53.2, 80.1, 67.2]]), clamp_z=False)  # sRGB red
    assert ((lin > -1e-3) & (lin < 1 + 1e-3)).all() and [80, 70] in c.tolist()


def test_soft_encoding_is_a_gaussian_over_the_5_nearest(centres):
    ab = torch.tensor([[[[12.0]], [[-7.0]]]])  # (1, 2, 1, 1)
    z = colour_bins.soft_encode(ab, centres)[0, :, 0, 0]
    assert torch.isclose(z.sum(), torch.tensor(1.0))
    assert (z > 0).sum() == 5
    nearest = centres[z.argmax()]
    assert nearest.tolist() == [10.0, -10.0]
    assert colour_bins.nearest_bin(ab, centres).item() == z.argmax().item()


def test_sparse_soft_encoding_equals_the_dense_one(centres):
    ab = torch.tensor([[[[12.0, -90.3]], [[-7.0, 55.6]]]])  # (1, 2, 1, 2)
    dense = colour_bins.soft_encode(ab.round(), centres)
    idx, w = colour_bins.soft_encode_sparse(ab, centres)
    rebuilt = torch.zeros_like(dense).scatter_(1, idx, w)
    assert torch.allclose(rebuilt, dense, atol=1e-5)
    assert (idx[:, 0] == colour_bins.nearest_bin(ab.round(), centres)).all()


def test_rebalancing_favours_rare_colours_and_has_unit_mean(centres):
    c = centres.numpy()
    counts = np.ones(len(c))
    gray = np.argmin(np.abs(c).sum(1))
    counts[gray] = 1000  # photos are mostly near gray
    w = colour_bins.rebalancing_weights(counts, c)
    p = counts / counts.sum()
    # E under the smoothed prior is 1 by construction; under the raw counts it stays near 1
    assert w[gray] < w.mean() and w.max() / w[gray] > 1.5
    assert 0.5 < float((p * w).sum()) < 1.5


def test_annealed_mean_moves_from_mean_to_mode(centres):
    q = len(centres)
    red = int(np.argmin(np.abs(centres.numpy() - [60, 40]).sum(1)))
    blue = int(np.argmin(np.abs(centres.numpy() - [20, -60]).sum(1)))
    logits = torch.full((1, q, 1, 1), -20.0)
    logits[0, red], logits[0, blue] = 2.0, 1.2  # bimodal, red more likely
    chroma = [colour_bins.annealed_mean(logits, centres, t)[0, :, 0, 0] for t in (1, 0.38, 0)]
    probs = torch.softmax(logits, 1)[0, :, 0, 0]
    assert torch.allclose(chroma[0], probs @ centres, atol=1e-4)  # T=1: the mean
    assert chroma[2].tolist() == centres[red].tolist()             # T=0: the mode
    assert (chroma[0] - centres[red]).norm() > (chroma[1] - centres[red]).norm()


def test_rebalanced_cross_entropy_is_lowest_for_the_true_colour(centres):
    ab = torch.tensor([[60.0, 40.0]]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    w = torch.ones(len(centres))
    right = colour_bins.soft_encode(ab, centres).clamp_min(1e-6).log()
    wrong = colour_bins.soft_encode(-ab, centres).clamp_min(1e-6).log()
    assert colour_bins.rebalanced_cross_entropy(right, ab, centres, w) < \
        colour_bins.rebalanced_cross_entropy(wrong, ab, centres, w)


def test_steering_moves_saturation_to_confident_pixels_at_the_same_mean(centres):
    q = len(centres)
    logits = torch.zeros(1, q, 2, 2)          # every pixel clueless (uniform) ...
    red = int(np.argmin(np.abs(centres.numpy() - [60, 40]).sum(1)))
    logits[0, red, 0, 0] = 20.0                # ... but the top-left one, sure of red
    conf = colour_bins.confidence(logits)
    assert conf[0, 0, 0] > 0.99 and conf[0, 1, 1] < 0.01
    gain = colour_bins.steered_gain(logits, 1.5, 1.0)
    assert torch.isclose(gain.mean(), torch.tensor(1.5))   # the image's mean gain is kept
    assert gain[0, 0, 0] > 5.9 and gain[0, 1, 1] < 0.01    # sure pixel gets it, unsure don't
    flat = colour_bins.decode(logits, centres, 0.38, 1.5)
    steered = colour_bins.decode(logits, centres, 0.38, 1.5, steering=1.0)
    assert torch.allclose(steered[0, :, 0, 0], flat[0, :, 0, 0] * gain[0, 0, 0] / 1.5, atol=1e-4)
    assert torch.equal(colour_bins.decode(logits, centres, 0.38, 1.5, steering=0.0), flat)


def _bins_fusion(tmp_path, centres, colour):
    """Tiny bins fusion weights whose output layer always says `colour` (a*b*)."""
    cfg = FusionConfig(width=0.125, colour_head="bins", num_bins=len(centres), temperature=0.38)
    net = FusionNet(cfg)
    net.bin_centres.copy_(centres)
    last = net.colorize[-1]
    torch.nn.init.zeros_(last.weight)
    target = int(np.argmin(np.abs(centres.numpy() - colour).sum(1)))
    with torch.no_grad():
        last.bias.fill_(-5.0)
        last.bias[target] = 5.0
        neighbour = int(np.argmin(np.abs(centres.numpy() - np.array(colour) // 2).sum(1)))
        last.bias[neighbour] = 4.0  # a second, less chromatic mode
    path = tmp_path / "fusion_bins.safetensors"
    weights.save(path, net.state_dict(), {"backend": "fusion", "config": cfg.to_dict()})
    return path


def test_fusion_bins_weights_colour_and_keep_lightness(tmp_path, centres):
    path = _bins_fusion(tmp_path, centres, [60, 40])
    gray = np.tile(np.linspace(60, 200, 64, dtype=np.uint8), (48, 1))
    out = colorplug.get("fusion", weights=str(path), device="cpu").colorize(gray)
    lab = color.rgb_to_lab(out / 255.0)
    assert out.shape == (48, 64, 3)
    mid = lab[:, 16:48]
    assert np.median(mid[..., 1]) > 25 and np.median(mid[..., 2]) > 15  # red-orange came out
    expected_l = color.lightness_from_gray(gray / 255.0)
    assert np.abs(lab[..., 0] - expected_l).max() < 1.0  # full-resolution L* kept
    chroma = {}
    for t in (1.0, 0.38, 0.0):
        o = colorplug.get("fusion", weights=str(path), device="cpu", temperature=t).colorize(gray)
        chroma[t] = np.hypot(*color.rgb_to_lab(o / 255.0)[:, 16:48, 1:].transpose(2, 0, 1)).mean()
    assert chroma[1.0] < chroma[0.38] <= chroma[0.0] + 0.5
    sat = colorplug.get("fusion", weights=str(path), device="cpu", saturation=0.0).colorize(gray)
    assert np.abs(color.rgb_to_lab(sat / 255.0)[..., 1:]).max() < 1.0  # saturation 0 is gray


def test_decoding_options_are_checked(tmp_path, centres):
    with pytest.raises(colorplug.InputError, match="--colour-loss bins"):
        colorplug.get("fusion", weights=FusionWeights.PHOTOS_W025_V1, device="cpu",
                      temperature=0.5)  # v1 regresses a*b*
    # saturation is a chroma gain for any weights: 0 is gray, 2 doubles the chroma
    gray = np.tile(np.linspace(40, 220, 64, dtype=np.uint8), (32, 1))
    plain = colorplug.get("fusion", weights=FusionWeights.PHOTOS_W025_V1, device="cpu").colorize(gray)
    double = colorplug.get("fusion", weights=FusionWeights.PHOTOS_W025_V1, device="cpu",
                           saturation=2.0).colorize(gray)
    c1 = np.hypot(*color.rgb_to_lab(plain / 255.0)[..., 1:].transpose(2, 0, 1)).mean()
    c2 = np.hypot(*color.rgb_to_lab(double / 255.0)[..., 1:].transpose(2, 0, 1)).mean()
    # 1.99 measured: exactly 2x in Lab, a little less where gamut mapping trims the
    # doubled chroma; an ignored option would give 1.0
    assert 1.85 < c2 / c1 <= 2.02
    path = _bins_fusion(tmp_path, centres, [20, -60])
    with pytest.raises(colorplug.InputError, match=r"temperature must be a number in \[0, 10\]"):
        colorplug.get("fusion", weights=str(path), device="cpu", temperature="hot")
    with pytest.raises(colorplug.InputError, match="saturation must be"):
        colorplug.get("fusion", weights=str(path), device="cpu", saturation=-1)
    with pytest.raises(colorplug.InputError, match="steering applies to weights trained with"):
        colorplug.get("fusion", weights=FusionWeights.PHOTOS_W025_V1, device="cpu", steering=1)
    with pytest.raises(colorplug.InputError, match=r"steering must be a number in \[0, 10\]"):
        colorplug.get("fusion", weights=str(path), device="cpu", steering=-2)


def test_cgan_bins_generator_decodes(tmp_path, centres):
    cfg = GeneratorConfig(kind="unet", working_size=32, ngf=8, colour_head="bins",
                          num_bins=len(centres))
    g = build_generator(cfg)
    g.bin_centres.copy_(centres)
    assert g(torch.zeros(2, 1, 32, 32)).shape == (2, len(centres), 32, 32)
    last = g.net.up[-1][1]
    torch.nn.init.zeros_(last.weight)
    blue = int(np.argmin(np.abs(centres.numpy() - [20, -60]).sum(1)))
    with torch.no_grad():
        last.bias.fill_(-5.0)
        last.bias[blue] = 5.0
    path = tmp_path / "cgan_bins.safetensors"
    weights.save(path, g.state_dict(), {"backend": "cgan", "config": cfg.to_dict()})
    out = colorplug.get("cgan", weights=str(path), device="cpu").colorize(
        np.full((40, 40), 128, np.uint8))
    lab = color.rgb_to_lab(out / 255.0)
    assert np.median(lab[..., 2]) < -30  # blue came out
    with pytest.raises(colorplug.InputError, match="--colour-loss bins"):
        colorplug.get("cgan", weights=CGANWeights.RESNET18_PHOTOS_V1, device="cpu",
                      temperature=0.2)  # v1 regresses a*b*; the default (v2) is bins
    assert colorplug.get("cgan", device="cpu", temperature=0.2).temperature == 0.2


@pytest.mark.parametrize("backend,extra", [
    ("fusion", ["--width", "0.125", "--crop", "224", "--warmup", "1"]),
    ("cgan", ["--generator", "unet", "--ngf", "8", "--crop", "32", "--ndf", "8"]),
])
def test_train_with_colour_loss_bins(tmp_path, backend, extra):
    """`colorplug train B --colour-loss bins` trains, stores the bins and the rebalancing
    prior in the weights, and the result loads and colorizes."""
    from PIL import Image

    from colorplug.cli import main

    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        arr = np.zeros((48, 48, 3), np.uint8)
        arr[..., i % 3] = 200
        arr += rng.integers(0, 40, arr.shape, dtype=np.uint8)
        Image.fromarray(arr).save(data / f"p{i}.png")
    out = tmp_path / f"{backend}.safetensors"
    assert main(["train", backend, "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--steps-per-epoch", "1", "--batch-size", "2", "--val-fraction", "0.25",
                 "--colour-loss", "bins", "--quiet", *extra]) == 0
    from safetensors.torch import load_file

    state, meta = load_file(out), weights.read_metadata(out)
    assert torch.equal(state["bin_centres"], torch.from_numpy(colour_bins.in_gamut_bins()))
    prior = state["bin_weights"]
    assert prior.shape == (251,) and not torch.allclose(prior, torch.ones(251))
    assert meta["config"]["colour_head"] == "bins"
    rgb = colorplug.get(backend, weights=str(out), device="cpu").colorize(
        np.full((32, 32), 100, np.uint8))
    assert rgb.shape == (32, 32, 3)


def _fusion_with_bias(tmp_path, centres, bias: torch.Tensor):
    """Tiny bins fusion weights whose output layer gives every pixel the logits `bias`."""
    cfg = FusionConfig(width=0.125, colour_head="bins", num_bins=len(centres))
    net = FusionNet(cfg)
    net.bin_centres.copy_(centres)
    torch.nn.init.zeros_(net.colorize[-1].weight)
    with torch.no_grad():
        net.colorize[-1].bias.copy_(bias)
    path = tmp_path / "fusion_bias.safetensors"
    weights.save(path, net.state_dict(), {"backend": "fusion", "config": cfg.to_dict()})
    return path


def test_confidence_map_is_one_minus_the_bins_entropy_at_the_input_size(tmp_path, centres):
    """`confidence(image)`: (H, W) in [0, 1]; a model sure of one bin reads ~1 everywhere, one
    with a uniform distribution ~0; weights that regress a*b* say they have none."""
    gray = np.tile(np.linspace(40, 220, 70, dtype=np.uint8), (45, 1))
    sure_bias = torch.full((len(centres),), -20.0)
    sure_bias[int(np.argmin(np.abs(centres.numpy() - [60, 40]).sum(1)))] = 20.0
    sure = colorplug.get("fusion", weights=str(_fusion_with_bias(tmp_path, centres, sure_bias)),
                         device="cpu").confidence(gray)
    assert sure.shape == (45, 70) and sure.dtype == np.float32
    assert sure.min() > 0.99
    unsure = colorplug.get("fusion", device="cpu", weights=str(_fusion_with_bias(
        tmp_path, centres, torch.zeros(len(centres))))).confidence(gray)
    assert unsure.max() < 0.01
    from colorplug import evaluate
    assert evaluate.confidence_stats(sure) == {"confidence_mean": pytest.approx(1.0, abs=0.01),
                                               "confident_share": 1.0}
    assert evaluate.confidence_stats(unsure)["confident_share"] == 0.0
    with pytest.raises(colorplug.InputError, match="regress a\\*b\\* and have no per-pixel"):
        colorplug.get("fusion", weights=FusionWeights.PHOTOS_W025_V1, device="cpu").confidence(gray)
    with pytest.raises(colorplug.InputError, match="regress a\\*b\\* and have no per-pixel"):
        colorplug.get("cgan", weights=CGANWeights.RESNET18_PHOTOS_V1,
                      device="cpu").confidence(gray)
    with pytest.raises(colorplug.InputError, match="gives no per-pixel confidence"):
        colorplug.get("autoencoder", device="cpu").confidence(gray)


def test_shipped_cgan_confidence_is_a_map_between_the_extremes():
    """The shipped bins generator (cgan's default) is neither sure nor clueless everywhere:
    its confidence map has the input's size and spreads inside (0, 1)."""
    rng = np.random.default_rng(0)
    gray = (np.add.outer(np.arange(60), np.arange(90)) * 2 % 256).astype(np.uint8)
    gray = np.clip(gray.astype(int) + rng.integers(-10, 10, gray.shape), 0, 255).astype(np.uint8)
    conf = colorplug.get("cgan", device="cpu").confidence(gray)
    assert conf.shape == (60, 90)
    assert 0.0 < conf.min() < conf.max() < 1.0
