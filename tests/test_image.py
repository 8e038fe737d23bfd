import numpy as np
import pytest
import torch
from PIL import Image

from colorplug import InputError, color
from colorplug.image import (intensity_to_unit, prepare, prepare_reference, read_image,
                             write_bytes_atomic, write_image)


def test_accepts_every_documented_form(gray_image):
    base = prepare(gray_image).lightness
    rgb = np.repeat(gray_image[..., None], 3, -1)
    rgba = np.concatenate([rgb, np.full_like(gray_image, 128)[..., None]], -1)
    for form in [gray_image[..., None], rgb, Image.fromarray(gray_image),
                 torch.from_numpy(gray_image), torch.from_numpy(rgb).permute(2, 0, 1),
                 gray_image.astype(np.float32) / 255, gray_image.astype(np.float64) / 255,
                 gray_image.astype(np.uint16) * 257]:
        got = prepare(form, intensity_range="dtype" if getattr(form, "dtype", None) == np.uint16
                      else None)
        assert got.lightness.shape == gray_image.shape
        assert np.abs(got.lightness - base).max() < 1e-3
    p = prepare(rgba)
    assert p.alpha is not None and p.alpha[0, 0] == pytest.approx(128 / 255)


def test_colour_input_gives_its_lightness():
    rgb = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    expected = color.rgb_to_lab(rgb / 255.0)[..., 0]
    assert np.abs(prepare(rgb).lightness - expected).max() < 1e-3
    assert prepare(rgb).is_color


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 5), np.uint8), "empty"),
    (np.zeros((4, 0, 3), np.uint8), "empty"),
    (np.zeros(5, np.uint8), "ndim 1"),
    (np.zeros((2, 3, 4, 5), np.uint8), "ndim 4"),
    (np.zeros((4, 4, 2), np.uint8), "2 channels"),
    (np.zeros((4, 4, 5), np.uint8), "shape"),
    (np.array([[0.1, np.nan]]), "NaN"),
    (np.array([[0.1, np.inf]], np.float32), "NaN or infinite"),
    (np.zeros((4, 4), np.int64), "unsupported image dtype int64"),
    (np.zeros((4, 4), bool), "unsupported image dtype bool"),
    ("not an image", "unsupported image type str"),
    (None, "no image given"),
])
def test_bad_input_names_the_problem(bad, message):
    with pytest.raises(InputError, match=message):
        prepare(bad)


def test_intensity_ranges():
    data = np.array([[100, 200, 300, 4000]], np.uint16)
    assert intensity_to_unit(data, (100, 300)).tolist() == [[0.0, 0.5, 1.0, 1.0]]
    assert intensity_to_unit(data, "dtype")[0, 3] == pytest.approx(4000 / 65535)
    stretched = intensity_to_unit(np.arange(1000, dtype=np.uint16).reshape(10, 100))
    assert stretched.min() == 0 and stretched.max() == 1  # percentile default for uint16
    floats = np.array([[-5.0, 0.0, 5.0]])
    assert intensity_to_unit(floats).tolist() == [[0.0, 0.5, 1.0]]
    ints = np.array([[0, 50, 100]], np.int32)
    assert intensity_to_unit(ints, (0, 100)).tolist() == [[0.0, 0.5, 1.0]]
    with pytest.raises(InputError, match="lo < hi"):
        intensity_to_unit(data, (5, 5))
    with pytest.raises(InputError, match="intensity_range must be"):
        intensity_to_unit(data, "bogus")


def test_reference_must_have_colour():
    with pytest.raises(InputError, match="grayscale"):
        prepare_reference(np.zeros((4, 4), np.uint8))
    with pytest.raises(InputError, match="no colour"):
        prepare_reference(np.full((4, 4, 3), 90, np.uint8))
    lab = prepare_reference(np.tile(np.array([200, 30, 30], np.uint8), (3, 3, 1)))
    assert lab[0, 0, 1] > 40  # red has positive a*


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(InputError, match="not an image file"):
        read_image(text)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:400])
    with pytest.raises(InputError, match="truncated or corrupt.*truncated.png|truncated.png.*truncated"):
        read_image(truncated)


def test_read_keeps_16_bit_gray(tmp_path):
    data = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(data).save(tmp_path / "a.png")
    back = read_image(tmp_path / "a.png")
    assert back.dtype == np.uint16 and np.array_equal(back, data)


def test_write_never_overwrites_unless_asked(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_image(target, np.zeros((2, 2, 3), np.uint8))
    assert target.read_bytes() == b"precious"
    write_image(target, np.zeros((2, 2, 3), np.uint8), overwrite=True)
    assert read_image(target).shape == (2, 2, 3)
    assert not list(tmp_path.glob(".*part"))  # no temporary files left behind


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    import os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(tmp_path / "x.bin", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_colour_round_trip(tmp_path, suffix):
    data = np.random.default_rng(3).integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    write_image(tmp_path / f"c{suffix}", data)
    if suffix == ".png":
        import zlib

        raw = (tmp_path / "c.png").read_bytes()
        with Image.open(tmp_path / "c.png") as im:  # a valid PNG that Pillow can decode
            assert im.size == (7, 5)
            im.load()
        idat = raw[raw.index(b"IDAT") + 4:raw.index(b"IEND") - 8]
        rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(5, 1 + 7 * 3 * 2)
        assert (rows[:, 0] == 0).all()
        back = rows[:, 1:].copy().view(">u2").reshape(5, 7, 3).astype(np.uint16)
    else:
        back = read_image(tmp_path / "c.tif")
    assert back.dtype == np.uint16 and np.array_equal(back, data)


def test_working_shape_keeps_aspect_and_rounds_to_multiples():
    from colorplug.image import working_shape

    assert working_shape(768, 1024, 256) == (192, 256)
    assert working_shape(768, 1024, 256, multiple=32) == (192, 256)
    assert working_shape(100, 1000, 256, multiple=32) == (32, 256)   # never below one multiple
    assert working_shape(7, 13, 256, multiple=8) == (136, 256)
    assert working_shape(1, 1, 128) == (128, 128)
