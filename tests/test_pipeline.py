"""The shared colorize pipeline, exercised through the torch-free `gray` backend and a
test backend that paints a fixed chroma."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import colorplug
from colorplug import color
from colorplug.backends.gray import GrayColorizer
from colorplug.pipeline import ChromaColorizer, recombine, upsample_rows
from colorplug.protocol import BackendInfo


class Painter(ChromaColorizer):
    """Predicts a fixed 3x4 chroma pattern, whatever the input."""

    info = BackendInfo(name="painter", description="test")

    def predict_chroma(self, lightness, *, reference, hints):
        ab = np.zeros((3, 4, 2), np.float32)
        ab[..., 0] = np.arange(12).reshape(3, 4) * 4 - 20
        ab[..., 1] = 30
        return [ab for _ in lightness]


def mean_delta_l(out, gray_in):
    return np.abs(color.lightness_from_rgb(out[..., :3] / 255.0)
                  - color.lightness_from_gray(gray_in / 255.0)).mean()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 13), (64, 3), (1023, 769)])
def test_output_size_and_lightness_are_the_input_s(shape):
    gray = np.random.default_rng(0).integers(20, 236, shape, dtype=np.uint8)
    out = Painter().colorize(gray)
    assert out.shape == shape + (3,) and out.dtype == np.uint8
    assert mean_delta_l(out, gray) < 1.0
    assert np.abs(color.rgb_to_lab(out / 255.0)[..., 1:]).mean() > 5  # chroma is there


def test_gray_backend_is_identity_on_gray_input(gray_image):
    out = GrayColorizer().colorize(gray_image)
    assert np.array_equal(out, np.repeat(gray_image[..., None], 3, -1))


def test_upsampling_equals_torch_bilinear():
    small = np.random.default_rng(1).normal(size=(5, 7, 2)).astype(np.float32)
    ours = upsample_rows(small, 23, 31, 0, 23)
    ref = F.interpolate(torch.from_numpy(small).permute(2, 0, 1)[None], size=(23, 31),
                        mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - ref).max() < 1e-5
    strips = np.concatenate([upsample_rows(small, 23, 31, a, b) for a, b in
                             [(0, 4), (4, 5), (5, 23)]])
    assert np.array_equal(strips, ours)


def test_strips_do_not_change_the_result(monkeypatch):
    lightness = np.random.default_rng(2).uniform(0, 100, (50, 40)).astype(np.float32)
    ab = np.random.default_rng(3).normal(0, 20, (6, 5, 2)).astype(np.float32)
    whole = recombine(lightness, ab, None, "float32")
    import colorplug.pipeline as pl

    monkeypatch.setattr(pl, "STRIP_PIXELS", 100)
    assert np.array_equal(recombine(lightness, ab, None, "float32"), whole)


def test_alpha_is_carried_and_dtypes(gray_image):
    rgba = np.dstack([np.repeat(gray_image[..., None], 3, -1), np.arange(gray_image.size)
                      .reshape(gray_image.shape) % 256]).astype(np.uint8)
    out = Painter().colorize(rgba)
    assert out.shape == gray_image.shape + (4,)
    assert np.array_equal(out[..., 3], rgba[..., 3])
    f = Painter(output_dtype="float32").colorize(gray_image)
    u16 = Painter(output_dtype="uint16").colorize(gray_image)
    assert f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
    assert u16.dtype == np.uint16 and np.abs(u16 / 65535.0 - f).max() < 1e-4
    with pytest.raises(colorplug.InputError, match="output_dtype"):
        Painter(output_dtype="int8")


def test_uint16_scientific_data_uses_contrast_range():
    data = np.linspace(1000, 3000, 40 * 30).reshape(40, 30).astype(np.uint16)
    out = GrayColorizer(intensity_range=(1000, 3000), output_dtype="float32").colorize(data)
    lightness = color.lightness_from_rgb(out)
    assert lightness[0, 0] < 0.01 and lightness[-1, -1] > 99.99
    assert np.all(np.diff(lightness[:, 0]) > 0)


def test_batch_equals_one_by_one(gray_image):
    images = [gray_image, gray_image[:20, :9], np.full((3, 5), 77, np.uint8)]
    batch = Painter().colorize_batch(images)
    listed = Painter().colorize(images)
    for b, l, im in zip(batch, listed, images):
        single = Painter().colorize(im)
        assert np.array_equal(b, single) and np.array_equal(l, single)
    with pytest.raises(colorplug.InputError, match="empty list"):
        Painter().colorize_batch([])
    with pytest.raises(colorplug.InputError, match="image 1"):
        Painter().colorize_batch([gray_image, np.zeros((0, 2))])


def test_reference_to_a_backend_without_one_warns():
    with pytest.warns(colorplug.IgnoredInputWarning, match="takes no reference"):
        Painter().colorize(np.zeros((4, 4), np.uint8), reference=np.zeros((4, 4, 3), np.uint8))
    with pytest.warns(colorplug.IgnoredInputWarning, match="takes no colour hints"):
        Painter().colorize(np.zeros((4, 4), np.uint8), hints=np.zeros((4, 4, 3), np.uint8))


def test_missing_reference_is_an_error():
    class NeedsRef(Painter):
        info = BackendInfo(name="needsref", description="", needs_reference=True)

    assert NeedsRef.info.accepts_reference
    with pytest.raises(colorplug.MissingReferenceError, match="needs a colour reference"):
        NeedsRef().colorize(np.zeros((4, 4), np.uint8))
    with pytest.raises(colorplug.InputError, match="grayscale"):
        NeedsRef().colorize(np.zeros((4, 4), np.uint8), reference=np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("name", ["fusion", "cgan"])
def test_batched_results_equal_one_by_one(name):
    import colorplug

    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, shape, dtype=np.uint8)
              for shape in [(64, 64), (64, 64), (48, 80), (64, 64), (48, 80), (17, 9)]]
    c = colorplug.get(name, device="cpu", batch_size=4)
    batched = c.colorize_batch(images)
    single = [c.colorize(im) for im in images]
    for b, s in zip(batched, single):
        assert b.shape == s.shape
        assert np.abs(b.astype(int) - s.astype(int)).max() <= 1  # within 1/255


def test_a_colour_input_is_said_to_lose_its_colours(tmp_path, capsys):
    """Issue 30 item 4: a colour photo given as input was recoloured without a word."""
    import warnings

    import colorplug
    from colorplug.cli import main
    from colorplug.image import write_image

    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200  # red
    gray_rgb = np.repeat(np.full((16, 16, 1), 90, np.uint8), 3, axis=-1)
    with pytest.warns(colorplug.ColourInputWarning, match="already in colour.*keeps only"):
        colorplug.get("gray").colorize(rgb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gray given as RGB, or plain gray: no word
        colorplug.get("gray").colorize(gray_rgb)
        colorplug.get("gray").colorize(gray_rgb[..., 0])
    write_image(tmp_path / "photo.png", rgb)
    assert main(["colorize", "-b", "gray", str(tmp_path / "photo.png"), "-o",
                 str(tmp_path / "out.png")]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "photo.png" in err and "already in colour" in err
