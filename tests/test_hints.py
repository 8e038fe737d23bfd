"""colorplug.hints: one parser of colour hints for every backend that takes them."""
import numpy as np
import pytest

import colorplug
from colorplug.hints import hint_maps


def test_points_paint_discs_of_their_colour():
    ab, mask = hint_maps([(5, 4, (255, 0, 0), 2), (15, 10, "#0000ff")], (20, 30))
    assert mask[4, 5] and mask[10, 15] and not mask[0, 29]
    assert ab[4, 5, 0] > 50 and ab[10, 15, 1] < -50  # red: +a*, blue: -b*
    assert 9 <= mask[2:7, 3:8].sum() <= 25


def test_images_rgba_marked_rgb_and_explicit_mask():
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[2, 3] = (0, 200, 0, 255)
    ab, mask = hint_maps(rgba, (6, 8))
    assert mask.sum() == 1 and ab[2, 3, 0] < -30  # green: -a*
    rgb = np.full((6, 8, 3), 128, np.uint8)
    rgb[1, 1] = (220, 40, 40)
    assert hint_maps(rgb, (6, 8))[1].sum() == 1  # gray pixels are not hints
    explicit = np.zeros((6, 8), bool)
    explicit[0, 0] = True
    assert hint_maps({"image": rgb, "mask": explicit}, (6, 8))[1].sum() == 1


@pytest.mark.parametrize("hints, words", [
    ([(50, 50, "#ff0000")], "outside the 8x6 image"),
    ([(1, 1, "#zzzzzz")], "#rrggbb"),
    ([(1, 1)], "(x, y, colour[, radius])"),
    (np.zeros((3, 3, 3), np.uint8), "must match"),
    (np.full((6, 8, 3), 100, np.uint8), "no hinted pixel"),
    ({"image": np.zeros((6, 8, 3), np.uint8)}, "'image' and 'mask'"),
])
def test_bad_hints_are_input_errors(hints, words):
    with pytest.raises(colorplug.InputError, match=words.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        hint_maps(hints, (6, 8))
