"""Tests of the colorplug-classic plugin package, installed as a real distribution."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import colorplug
from colorplug import color
from colorplug.evaluate import gray_input, psnr
from colorplug.registry import Registry


def chroma(rgb: np.ndarray) -> np.ndarray:
    lab = color.rgb_to_lab(rgb[..., :3] / 255.0)
    return lab[..., 1:]


def test_discovered_through_the_entry_point():
    reg = Registry()
    for name in ("transfer", "scribble"):
        entry = reg.entry(name)
        assert entry.distribution == "colorplug-classic" and entry.plugin == "classic"
    infos = {i.name: i for i in colorplug.available()}
    assert infos["transfer"].needs_reference and not infos["transfer"].supports_hints
    assert infos["scribble"].supports_hints and not infos["scribble"].needs_reference


@pytest.fixture
def two_regions() -> np.ndarray:
    """A dark left half and a bright right half: one strong vertical edge at x = 80."""
    img = np.full((120, 160), 70, np.uint8)
    img[:, 80:] = 190
    img = img.astype(np.int16) + np.random.default_rng(0).integers(-2, 3, img.shape)
    return img.clip(0, 255).astype(np.uint8)


def test_one_red_scribble_fills_its_region_and_stops_at_the_edge(two_regions):
    out = colorplug.get("scribble").colorize(two_regions, hints=[(20, 60, (220, 20, 20), 3)])
    ab = chroma(out)
    left, right = ab[:, :78], ab[:, 82:]
    assert (left[..., 0] > 25).all()          # every pixel of the scribbled region is red
    assert np.abs(right).max() < 2.0           # colour stops at the strong edge
    lightness_out = color.lightness_from_rgb(out / 255.0)
    assert np.abs(lightness_out - color.lightness_from_gray(two_regions / 255.0)).mean() < 1


def test_two_scribbles_two_colours_and_hint_image_forms(two_regions):
    strokes = np.zeros(two_regions.shape + (4,), np.uint8)
    strokes[50:60, 10:30] = (230, 30, 30, 255)     # red stroke, left
    strokes[50:60, 120:140] = (30, 60, 230, 255)   # blue stroke, right
    out = colorplug.get("scribble").colorize(two_regions, hints=strokes)
    ab = chroma(out)
    assert ab[100, 40, 0] > 25                       # red: a* > 0
    assert ab[100, 100, 1] < -25                     # blue: b* < 0
    marked = strokes[..., :3].copy()                 # a marked RGB image, Levin style
    out2 = colorplug.get("scribble").colorize(two_regions, hints=marked)
    assert np.abs(out2.astype(int) - out.astype(int)).max() <= 1


def test_scribble_errors(two_regions):
    with pytest.raises(colorplug.InputError, match="needs colour hints"):
        colorplug.get("scribble").colorize(two_regions)
    with pytest.raises(colorplug.InputError, match="must match"):
        colorplug.get("scribble").colorize(two_regions, hints=np.zeros((5, 5, 4), np.uint8))
    with pytest.raises(colorplug.InputError, match="no hinted pixel"):
        colorplug.get("scribble").colorize(two_regions, hints=np.zeros((120, 160, 4), np.uint8))
    with pytest.raises(colorplug.InputError, match="outside"):
        colorplug.get("scribble").colorize(two_regions, hints=[(500, 5, "#ff0000")])


@pytest.mark.parametrize("photo", ["coffee", "chelsea"])
def test_transfer_with_own_colours_as_reference(photo):
    import skimage.data

    img = Image.fromarray(getattr(skimage.data, photo)())
    img.thumbnail((256, 256))
    truth = np.asarray(img)
    gray = gray_input(truth)
    out = colorplug.get("transfer").colorize(gray, reference=truth)
    assert out.shape == truth.shape
    assert psnr(out, truth) >= 25.0
    assert psnr(out, truth) > psnr(colorplug.get("gray").colorize(gray), truth) + 5


def test_transfer_takes_colours_from_the_reference(two_regions):
    ref = np.zeros((40, 60, 3), np.uint8)
    ref[:, :30] = (40, 90, 30)      # dark green
    ref[:, 30:] = (240, 200, 60)    # bright yellow
    out = colorplug.get("transfer").colorize(two_regions, reference=ref)
    ab = chroma(out)
    assert ab[60, 20, 0] < -10 and ab[60, 20, 1] > 10   # dark half -> green
    assert ab[60, 140, 1] > 40                           # bright half -> yellow
    with pytest.raises(colorplug.MissingReferenceError):
        colorplug.get("transfer").colorize(two_regions)


def test_multigrid_solution_is_close_to_the_exact_one():
    """At 400x400 the solver coarsens once; compare with a direct sparse solve."""
    import scipy.sparse.linalg as spla

    from colorplug_classic.hints import parse_hints
    from colorplug_classic.scribble import affinity_laplacian, propagate

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:400, 0:400] / 400
    y = 0.5 + 0.3 * np.sin(6 * xx) * np.cos(4 * yy)
    y[150:260, 120:300] = 0.9  # a bright block with strong edges
    y = y + rng.normal(0, 0.005, y.shape)
    points = [(int(px), int(py), tuple(int(v) for v in rng.integers(0, 256, 3)), 4)
              for px, py in rng.integers(10, 390, (12, 2))]
    ab, mask = parse_hints(points, y.shape)
    got = propagate(y, ab, mask)
    lap = affinity_laplacian(y, 0.05, 1e-6)
    known, unknown = mask.ravel(), ~mask.ravel()
    exact = np.empty((y.size, 2))
    exact[known] = ab.reshape(-1, 2)[known]
    exact[unknown] = spla.splu(lap[unknown][:, unknown].tocsc()).solve(
        -(lap[unknown][:, known] @ exact[known]))
    err = np.abs(got - exact.reshape(got.shape))
    assert err.mean() < 1.5 and np.percentile(err, 99) < 10
    assert np.abs(exact).mean() > 10  # the comparison is not between two near-zero fields


def test_scribble_without_hints_is_a_missing_hints_error():
    import numpy as np

    with pytest.raises(colorplug.MissingHintsError, match="needs colour hints"):
        colorplug.get("scribble").colorize(np.zeros((8, 8), np.uint8))
