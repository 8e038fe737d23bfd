"""The contract every built-in backend keeps, with its shipped weights: output H x W equals
the input's for any size, and the output's lightness is the input's (mean |dL*| < 1)."""
import functools

import numpy as np
import pytest

import colorplug
from colorplug import color

from .conftest import make_photo


@functools.lru_cache(maxsize=None)
def backend(name: str):
    return colorplug.get(name, device="cpu")


@pytest.mark.parametrize("name", ["gray", "autoencoder", "fusion", "cgan", "exemplar"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (300, 211), (1023, 769)])
def test_size_and_lightness_preserved(name, shape):
    gray = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    c = backend(name)
    # exemplar without a reference is tested in test_exemplar_auto (k references: k times
    # the time); here the single-reference path
    kwargs = {"reference": make_photo(1, (120, 90))} if c.info.needs_reference or \
        name == "exemplar" else {}
    out = c.colorize(gray, **kwargs)
    assert out.shape == shape + (3,)
    dl = color.lightness_from_rgb(out / 255.0) - color.lightness_from_gray(gray / 255.0)
    assert np.abs(dl).mean() < 1.0
