"""The built-in hints model `guided` (issue 30 item 5) and the simulated-hints protocol."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

import colorplug
from colorplug import color
from colorplug.evaluate import gray_input, simulated_hints


def test_simulated_hints_are_seeded_per_photo_and_carry_the_truths_5x5_mean():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 256, (40, 60, 3)).astype(np.uint8)
    a = simulated_hints(truth, 10, seed=0, name="x.png")
    assert a == simulated_hints(truth, 10, seed=0, name="x.png")
    assert a != simulated_hints(truth, 10, seed=1, name="x.png")
    assert a != simulated_hints(truth, 10, seed=0, name="y.png")
    assert len(a) == 10
    x, y, colour, radius = a[0]
    patch = truth[max(0, y - 2):y + 3, max(0, x - 2):x + 3].reshape(-1, 3).mean(0)
    assert np.allclose(colour, patch) and radius == 2.0


def test_hints_survive_the_working_size():
    from colorplug.backends.guided.colorizer import hints_at

    ab = np.zeros((1000, 800, 2), np.float32)
    mask = np.zeros((1000, 800), bool)
    ab[500, 400] = (60, -20)
    mask[500, 400] = True  # one pixel in 800 000
    small_ab, small_mask = hints_at(ab, mask, 208, 256)
    assert small_mask.sum() >= 1
    assert np.allclose(small_ab[small_mask][0], (60, -20), atol=1e-3)


def test_training_hints_carry_the_truths_colour_where_the_mask_is_set():
    import torch

    from colorplug.backends.guided.train import simulate_hints

    args = argparse.Namespace(no_hint_prob=0.0, mean_points=10, max_points=50,
                              stroke_prob=1.0)
    ab = torch.zeros(2, 2, 64, 64)
    ab[:, 0, :, :32] = 50.0  # left half a* = 50, right half 0
    hint, mask = simulate_hints(ab, args, torch.Generator().manual_seed(0))
    assert mask.sum() > 0 and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert (hint * (1 - mask)).abs().max() == 0  # nothing outside the mask
    hinted = hint[:, 0][mask[:, 0] > 0]
    assert hinted.min() >= 0 and hinted.max() <= 50.0  # means of the truth, never beyond


@pytest.fixture(scope="module")
def guided():
    return colorplug.get("guided", device="cpu")


def test_a_hint_sets_the_colour_of_its_region(guided):
    """A sky-blue click on the bright region and a red one on the dark region: each moves
    its whole region's colour towards the hint (from what the prior gives without hints),
    and not the other region's."""
    gray = np.full((128, 192), 200, np.uint8)
    gray[64:] = 90  # two flat regions, L* 80 and 38
    sky, red = (150, 200, 255), (200, 40, 40)
    out = guided.colorize(gray, hints=[(40, 20, sky, 2), (150, 100, red, 2)])
    plain = guided.colorize(gray)

    def mean_lab(rgb, rows):
        return color.rgb_to_lab(rgb[rows] / 255.0).reshape(-1, 3).mean(0)

    top, bottom = mean_lab(out, slice(8, 56)), mean_lab(out, slice(72, 120))
    top0, bottom0 = mean_lab(plain, slice(8, 56)), mean_lab(plain, slice(72, 120))
    sky_lab = color.rgb_to_lab(np.array(sky) / 255.0)
    red_lab = color.rgb_to_lab(np.array(red) / 255.0)
    # the share of the way from the prior's colour to the hint's, over the whole region
    assert (top[2] - top0[2]) / (sky_lab[2] - top0[2]) > 0.25  # b*: towards blue
    assert (bottom[1] - bottom0[1]) / (red_lab[1] - bottom0[1]) > 0.5  # a*: towards red
    assert abs(top[1] - top0[1]) < 5  # the red click does not redden the sky region
    # lightness is the input's
    lab = color.rgb_to_lab(out / 255.0)
    assert np.abs(lab[..., 0] - color.lightness_from_gray(gray / 255.0)).max() < 1.0


def test_hints_help_on_a_photo_more_with_more_hints(guided):
    truth = colorplug.sample("astronaut_color")[::2, ::2]
    from colorplug.evaluate import psnr

    gray = gray_input(truth)
    scores = [psnr(guided.colorize(gray, hints=simulated_hints(truth, k, 0, "a") or None),
                   truth) for k in (0, 5, 20)]
    assert scores[0] < scores[1] < scores[2]


def test_spreading_makes_the_hinted_pixels_the_hints_colour(guided):
    """With spreading (the default) the output carries each hint's a*b* at its pixel; the
    network alone only moves towards it. A click far from the prior's colour shows it."""
    gray = np.full((96, 128), 150, np.uint8)
    gray[:, 64:] = 60
    hint_rgb = (60, 170, 60)  # green on a flat mid-gray region
    hints = [(30, 40, hint_rgb, 2)]
    spread = guided.colorize(gray, hints=hints)
    alone = colorplug.get("guided", device="cpu", spread=False).colorize(gray, hints=hints)
    hint_ab = color.rgb_to_lab(np.array(hint_rgb) / 255.0)[1:]

    def ab_error(rgb):
        return float(np.abs(color.rgb_to_lab(rgb[40, 30] / 255.0)[1:] - hint_ab).max())

    assert ab_error(spread) < 3.0 < ab_error(alone)


def test_a_correction_spreads_within_its_region_and_fades_across_an_edge():
    from colorplug.backends.guided.colorizer import spread_corrections

    lightness = np.full((40, 80), 70.0, np.float32)
    lightness[:, 40:] = 20.0  # a strong edge down the middle
    pred = np.zeros((40, 80, 2), np.float32)
    hint_ab = np.zeros_like(pred)
    mask = np.zeros((40, 80), bool)
    mask[20, 35], hint_ab[20, 35] = True, (30.0, -10.0)
    out = spread_corrections(lightness, pred, hint_ab, mask)
    assert np.allclose(out[20, 35], (30.0, -10.0))
    same_side, across = out[20, 30, 0], out[20, 40, 0]  # both 5 px from the hint
    assert same_side > 10.0  # within its region: most of the correction
    assert abs(across) < 1.0  # across the edge: next to none
    assert out[20, 10, 0] < same_side  # fading with the distance


def test_spread_options_are_checked():
    from colorplug.errors import InputError

    for bad in ({"spread": "maybe"}, {"spread_sigma": 0}, {"spread_decay": "x"}):
        with pytest.raises(InputError, match=next(iter(bad))):
            colorplug.get("guided", device="cpu", **bad)
