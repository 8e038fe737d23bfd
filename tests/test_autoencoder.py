import numpy as np
import pytest
import torch

import colorplug
from colorplug import color
from colorplug.backends.autoencoder.model import Autoencoder, AutoencoderConfig
from colorplug.image import read_image
from colorplug.cli import SAMPLE


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_paper():
    model = Autoencoder()
    assert count(model.encoder) == 1_418_496
    assert count(model.decoder) == 2_013_315
    x = torch.rand(2, 1, 32, 32)
    assert model(x).shape == (2, 3, 32, 32)
    assert 0 <= model(x).min() and model(x).max() <= 1  # sigmoid RGB


@pytest.mark.parametrize("variant", ["dropout", "dropout_bn"])
def test_variants(variant):
    model = Autoencoder(AutoencoderConfig(variant=variant))
    kinds = {type(m).__name__ for m in model.modules()}
    assert "Dropout2d" in kinds
    assert ("BatchNorm2d" in kinds) == (variant == "dropout_bn")
    with pytest.raises(ValueError, match="variant must be one of"):
        AutoencoderConfig(variant="bogus")


@pytest.fixture(scope="module")
def ae():
    return colorplug.get("autoencoder", device="cpu")


def test_sample_gets_colour(ae):
    gray = read_image(SAMPLE)
    out = ae.colorize(gray)
    chroma = np.hypot(*color.rgb_to_lab(out / 255.0)[..., 1:].transpose(2, 0, 1))
    assert chroma.mean() > 2.0  # not gray: the trained model predicts colour


def test_batch_equals_single(ae, gray_image):
    images = [gray_image, gray_image.T.copy(), np.full((9, 9), 200, np.uint8)]
    batch = ae.colorize_batch(images)
    for im, b in zip(images, batch):
        single = ae.colorize(im)
        assert np.abs(b.astype(int) - single.astype(int)).max() <= 1


def test_cuda_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path needs a machine without it")
    with pytest.raises(colorplug.DeviceError, match="CUDA is not available"):
        colorplug.get("autoencoder", device="cuda")
    with pytest.raises(colorplug.DeviceError, match="unknown device"):
        colorplug.get("autoencoder", device="tpu9")


def test_module_level_colorize_uses_default_backend(gray_image, monkeypatch):
    assert colorplug.default_backend() == "fusion"
    monkeypatch.setenv("COLORPLUG_DEFAULT_BACKEND", "gray")
    out = colorplug.colorize(gray_image)
    assert np.array_equal(out[..., 0], gray_image)
