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
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [0, 3, 4])
def test_round_trip_is_exact_for_8_and_16_bit_gray_rgb_rgba(tmp_path, suffix, dtype, channels):
    rng = np.random.default_rng(3)
    shape = (5, 7) if channels == 0 else (5, 7, channels)
    data = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    write_image(tmp_path / f"c{suffix}", data)
    back = read_image(tmp_path / f"c{suffix}")
    assert back.dtype == dtype and back.shape == shape
    assert np.array_equal(back, data)
    if suffix == ".png":  # a valid PNG that other decoders read too
        with Image.open(tmp_path / "c.png") as im:
            assert im.size == (7, 5)
            if dtype == np.uint8:  # channel order and alpha as Pillow sees them
                assert im.mode == {0: "L", 3: "RGB", 4: "RGBA"}[channels]
                assert np.array_equal(np.asarray(im), data)


def test_float32_tiff_keeps_float_and_png_keeps_16_bits(tmp_path):
    data = np.random.default_rng(4).random((4, 6, 3)).astype(np.float32)
    write_image(tmp_path / "f.tif", data)
    back = read_image(tmp_path / "f.tif")
    assert back.dtype == np.float32 and np.array_equal(back, data)
    write_image(tmp_path / "f.png", data)
    back = read_image(tmp_path / "f.png")
    assert back.dtype == np.uint16 and np.abs(back / 65535.0 - data).max() <= 0.5 / 65535 + 1e-7


def test_jpeg_exif_orientation_is_applied_on_read(tmp_path):
    # a 16x32 (wide) image whose EXIF says "rotate 90 CW to display" (orientation 6)
    arr = np.zeros((16, 32, 3), np.uint8)
    arr[:, :8] = (255, 0, 0)  # left quarter red
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    back = read_image(tmp_path / "phone.jpg")
    assert back.shape == (32, 16, 3)  # upright: tall
    assert back[2, :, 0].mean() > 200 and back[-3, :, 0].mean() < 60  # red on top


def test_fifo_and_other_non_regular_files_are_refused(tmp_path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_image(fifo)  # returns at once instead of blocking on the pipe


def test_decompression_bomb_is_a_clear_error_with_an_opt_in(tmp_path, monkeypatch):
    from colorplug.image.codecs import ImageTooLargeError

    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # what Pillow does at 179 MP
    with pytest.raises(ImageTooLargeError, match="allow-huge-images"):
        read_image(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png", allow_huge=True).shape == (40, 40)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_write_error_names_the_output_not_the_temporary(tmp_path):
    import os

    from colorplug.errors import OutputError

    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user that can write read-only folders (root)")
        with pytest.raises(OutputError) as info:
            write_image(folder / "out.png", np.zeros((2, 2, 3), np.uint8))
        assert "out.png" in str(info.value) and ".part" not in str(info.value)
    finally:
        os.chmod(folder, 0o755)


def test_write_into_a_path_under_a_file_is_an_output_error(tmp_path):
    from colorplug.errors import OutputError

    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(OutputError, match="afile/out.png"):
        write_image(tmp_path / "afile" / "out.png", np.zeros((2, 2, 3), np.uint8))


def _temporary_of_a_dead_process(folder, final_name="x.png"):
    """A temporary as a colorplug run killed before its rename leaves it: made by a real
    process through colorplug's own code, which then exits."""
    import subprocess
    import sys

    code = ("import sys; from colorplug.files import temporary_beside; "
            "print(temporary_beside(sys.argv[1]))")
    out = subprocess.run([sys.executable, "-c", code, str(folder / final_name)],
                         capture_output=True, text=True, check=True).stdout.strip()
    from pathlib import Path
    return Path(out)


def test_stale_temporaries_of_dead_processes_are_cleaned(tmp_path):
    from colorplug.files import clean_stale_parts, temporary_beside

    stale = _temporary_of_a_dead_process(tmp_path)
    live = temporary_beside(tmp_path / "y.png")
    assert stale.exists() and live.exists()
    assert clean_stale_parts([tmp_path]) == [stale]
    assert not stale.exists() and live.exists()


def test_cleanup_never_touches_what_colorplug_did_not_make(tmp_path):
    """Issue 27 item 1: a user's hidden files and folders that merely look like temporaries
    (old-style names, forged names, folders, symlinks) survive a run into their folder."""
    import os
    import shutil

    from colorplug.files import clean_stale_parts

    out = tmp_path / "out"
    backup = out / ".backup.999999.old.part" / "photos"
    backup.mkdir(parents=True)
    (backup / "a.png").write_bytes(b"the user's photo")
    (out / ".a.png.999999.x1y2.part").write_bytes(b"the user's hidden file")
    ours = _temporary_of_a_dead_process(out, "b.png")
    # the same name as ours, but a folder of the user's: never a folder
    folder_named_like_ours = out / ours.name.replace("b.png", "c.png")
    folder_named_like_ours.mkdir()
    (folder_named_like_ours / "keep.txt").write_bytes(b"x")
    # a symlink with a valid name pointing at a user's file: never through a symlink
    target = tmp_path / "precious.txt"
    target.write_bytes(b"precious")
    link = out / ours.name.replace("b.png", "d.png")
    os.symlink(target, link)
    # a forged name: the right shape, a wrong checksum
    forged = out / (ours.name[:-len("~b.png.part")][:-8] + "00000000~e.png.part")
    forged.write_bytes(b"x")
    shutil.copy(ours, out / "copy-of-ours.part")
    assert clean_stale_parts([out]) == [ours]
    assert (backup / "a.png").read_bytes() == b"the user's photo"
    assert (out / ".a.png.999999.x1y2.part").exists()
    assert (folder_named_like_ours / "keep.txt").exists()
    assert link.is_symlink() and target.read_bytes() == b"precious"
    assert forged.exists()


def test_colorize_into_a_folder_keeps_the_users_look_alike_folders(tmp_path, gray_image):
    """The issue's reproduction through the CLI, the path users take."""
    from colorplug.cli import main
    from colorplug.image import write_image

    out = tmp_path / "out"
    photos = out / ".backup.999999.old.part" / "photos"
    photos.mkdir(parents=True)
    write_image(photos / "a.png", gray_image)
    write_image(tmp_path / "b.png", gray_image)
    assert main(["colorize", "-b", "gray", str(tmp_path / "b.png"), "-o", str(out / "x.png")]) == 0
    assert (photos / "a.png").exists() and (out / "x.png").exists()


def test_working_shape_keeps_aspect_and_rounds_to_multiples():
    from colorplug.image import working_shape

    assert working_shape(768, 1024, 256) == (192, 256)
    assert working_shape(768, 1024, 256, multiple=32) == (192, 256)
    assert working_shape(100, 1000, 256, multiple=32) == (32, 256)   # never below one multiple
    assert working_shape(7, 13, 256, multiple=8) == (136, 256)
    assert working_shape(1, 1, 128) == (128, 128)


@pytest.mark.parametrize("data, intensity_range", [
    (np.array([[0, 0.5e39, 1e39]]), None),
    (np.array([[0, 0.5e39, 1e39]]), "percentile"),
    (np.array([[0.0, 0.5, 1.0]]), (-1e300, 1)),
    (np.array([[-1e308, 0.0, 1e308]]), None),
])
def test_finite_values_beyond_float32_map_without_overflow(data, intensity_range):
    unit = intensity_to_unit(data, intensity_range)
    assert unit.dtype == np.float32 and np.isfinite(unit).all()
    assert unit.min() >= 0 and unit.max() <= 1
    if intensity_range != (-1e300, 1):
        assert unit[0, 0] == 0 and unit[0, -1] == 1 and 0 < unit[0, 1] < 1
    lightness = prepare(data, intensity_range=intensity_range).lightness
    assert np.isfinite(lightness).all()


def test_bfloat16_tensor_input_is_accepted():
    t = torch.linspace(0, 1, 12, dtype=torch.bfloat16).reshape(3, 4)
    out = prepare(t).lightness
    assert out.shape == (3, 4) and out[0, 0] == 0 and abs(out[-1, -1] - 100) < 1e-3


def test_int64_reference_is_told_which_dtypes_work():
    with pytest.raises(InputError, match="reference must be uint8, uint16 or float RGB") as info:
        prepare_reference(np.zeros((4, 4, 3), np.int64))
    assert "intensity_range" not in str(info.value)
