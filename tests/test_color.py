import numpy as np
import pytest
import skimage.color as skc
import torch

from colorplug import color

EDGES = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0],
                  [0, 1, 1], [1, 0, 1], [0.04045, 0.04045, 0.04045], [0.5, 0.5, 0.5]])


@pytest.fixture
def colours():
    rng = np.random.default_rng(1)
    return np.concatenate([rng.random((2000, 3)), EDGES])


def test_rgb_to_lab_matches_skimage(colours):
    assert np.abs(color.rgb_to_lab(colours) - skc.rgb2lab(colours)).max() < 1e-3
    assert np.abs(color.rgb_to_lab(colours.astype(np.float32)) - skc.rgb2lab(colours)).max() < 1e-3


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    rng = np.random.default_rng(2)
    lab = np.stack([rng.uniform(0, 100, 3000), rng.uniform(-128, 127, 3000),
                    rng.uniform(-128, 127, 3000)], -1)
    with pytest.warns(UserWarning):  # skimage warns about its own clipping of negative Z
        ref = skc.lab2rgb(lab)
    ours = color.lab_to_rgb(lab)
    assert np.abs(ours - ref).max() < 1e-3
    assert ours.min() >= 0 and ours.max() <= 1  # gamut clipping


def test_round_trip_and_white_black(colours):
    assert np.abs(color.lab_to_rgb(color.rgb_to_lab(colours)) - colours).max() < 1e-6
    # skimage's rounded matrix puts sRGB white at a*, b* of a few thousandths, as here
    assert color.rgb_to_lab(np.ones(3)) == pytest.approx([100, 0, 0], abs=1e-2)
    assert color.rgb_to_lab(np.zeros(3)) == pytest.approx([0, 0, 0], abs=1e-6)


def test_lightness_helpers(colours):
    assert np.abs(color.lightness_from_rgb(colours) - skc.rgb2lab(colours)[:, 0]).max() < 1e-3
    g = np.linspace(0, 1, 101)
    assert np.abs(color.lightness_from_gray(g) - skc.rgb2lab(np.stack([g] * 3, -1))[:, 0]
                  ).max() < 1e-3
    assert np.abs(color.gray_from_lightness(color.lightness_from_gray(g)) - g).max() < 1e-9


def test_torch_matches_numpy_and_is_differentiable(colours):
    t = torch.tensor(colours.T.reshape(3, -1, 1), requires_grad=True)
    lab = color.rgb_to_lab_torch(t)
    assert np.abs(lab.detach()[:, :, 0].T.numpy() - skc.rgb2lab(colours)).max() < 1e-3
    lab.sum().backward()
    assert torch.isfinite(t.grad).all()
    back = color.lab_to_rgb_torch(lab.detach())
    assert torch.allclose(back, t.detach(), atol=1e-5)
    batch = torch.rand(2, 3, 4, 5)
    assert color.rgb_to_lab_torch(batch).shape == (2, 3, 4, 5)


def test_gamut_mapping_keeps_lightness_and_hue():
    lab = np.array([[30.0, 80.0, 60.0], [50.0, 0.0, 0.0], [90.0, -100.0, 90.0],
                    [60.0, 20.0, -10.0], [0.0, 50.0, 50.0], [100.0, -30.0, 40.0]])
    rgb = color.lab_to_rgb_in_gamut(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    back = color.rgb_to_lab(rgb)
    assert np.abs(back[:, 0] - lab[:, 0]).max() < 0.05       # lightness kept
    clipped_l = color.rgb_to_lab(color.lab_to_rgb(lab))[:, 0]
    assert np.abs(clipped_l - lab[:, 0]).max() > 2            # plain clipping would not
    assert np.allclose(rgb[[1, 3]], color.lab_to_rgb(lab[[1, 3]]))  # in-gamut untouched
    hue_in = np.arctan2(lab[0, 2], lab[0, 1])
    hue_out = np.arctan2(back[0, 2], back[0, 1])
    # desaturating in linear light keeps the dominant wavelength; Lab hue drifts a little
    assert abs(hue_in - hue_out) < 0.3 and np.hypot(*back[0, 1:]) > 20


def test_pipeline_fast_path_matches_the_float64_reference():
    """The colorize pipeline's float32 Lab -> sRGB (planes, gamut mapping only where needed,
    8-bit table) stays within one 8-bit step of `lab_to_rgb_in_gamut` in float64."""
    rng = np.random.default_rng(3)
    n = 200_000
    lab = np.stack([rng.uniform(0, 100, n), rng.uniform(-128, 127, n),
                    rng.uniform(-128, 127, n)], -1)
    lab[:50, 0], lab[50:100, 0], lab[100:150, 1:] = 0.0, 100.0, 0.0  # black, white, grays
    ref = color.lab_to_rgb_in_gamut(lab)
    linear = color.lab_to_linear_in_gamut(lab[:, 0], lab[:, 1], lab[:, 2])
    assert linear.dtype == np.float32 and linear.shape == (3, n)
    assert np.abs(color.linear_to_srgb(linear).T - ref).max() < 1e-4
    eight = np.stack([color.linear_to_srgb8(linear[c]) for c in range(3)], -1)
    diff = np.abs(eight.astype(int) - np.rint(ref * 255).astype(int))
    assert eight.dtype == np.uint8 and diff.max() <= 1 and (diff > 0).mean() < 0.01
    assert (eight[:150] == eight[:150, :1]).all()  # L* 0 and 100 and grays stay neutral


def test_srgb8_table_equals_the_transfer_curve():
    x = np.linspace(0, 1, 1_000_001, dtype=np.float32)
    exact = np.rint(255 * color.linear_to_srgb(x.astype(np.float64))).astype(int)
    table = color.linear_to_srgb8(x).astype(int)
    assert np.abs(table - exact).max() <= 1 and (table != exact).mean() < 0.01
    assert table[0] == 0 and table[-1] == 255
    assert (np.diff(table) >= 0).all()  # monotonic: no banding artefacts
