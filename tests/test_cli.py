import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from colorplug.cli import SAMPLE, main
from colorplug.image import read_image

from .conftest import PLUGIN_SOURCE


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "autoencoder" in out and "colorplug (built-in)" in out
    assert main(["info", "autoencoder"]) == 0
    assert "working size:     32" in capsys.readouterr().out
    assert main(["info", "fusion"]) == 0
    out = capsys.readouterr().out
    assert "weights:          fusion_photos_split_v2 (shipped:" in out
    assert "fusion_photos_split_w04_v3 (shipped:" in out  # the default, listed among them
    assert "working_size" in out and "batch_size" in out and "intensity_range" in out
    assert main(["info", "nope"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err


def test_colorize_sample_file(tmp_path, capsys):
    out = tmp_path / "result.png"
    assert main(["colorize", str(SAMPLE), "-o", str(out)]) == 0
    rgb = read_image(out)
    assert rgb.shape == read_image(SAMPLE).shape + (3,)
    assert "1 colorized, 0 failed" in capsys.readouterr().out
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # normal permissions, not mkstemp's


def test_colorize_folder_reports_bad_files_and_never_overwrites(tmp_path, capsys, gray_image):
    src = tmp_path / "in"
    (src / "deep").mkdir(parents=True)
    Image.fromarray(gray_image).save(src / "a.png")
    Image.fromarray(gray_image).save(src / "deep" / "b.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "a.png").write_bytes(b"keep me")
    code = main(["colorize", str(src), str(tmp_path / "missing.png"), "-o", str(dst),
                 "--backend", "gray"])
    assert code == 1
    err = capsys.readouterr()
    assert "broken.png" in err.err and "missing.png: no such file" in err.err
    assert f"exists, left alone: {dst / 'a.png'} (use --overwrite" in err.err
    assert "1 colorized, 1 existing, 2 failed" in err.out
    assert (dst / "a.png").read_bytes() == b"keep me"
    assert read_image(dst / "deep" / "b.png").shape == gray_image.shape + (3,)
    assert main(["colorize", str(src / "a.png"), "-o", str(dst), "--backend", "gray",
                 "--overwrite"]) == 0
    assert read_image(dst / "a.png").shape == gray_image.shape + (3,)


def test_colorize_errors_are_messages_not_tracebacks(tmp_path, capsys, gray_image):
    Image.fromarray(gray_image).save(tmp_path / "g.png")
    assert main(["colorize", str(tmp_path / "g.png"), "-o", str(tmp_path / "x.png"),
                 "--backend", "nope"]) == 2
    assert "unknown backend 'nope'" in capsys.readouterr().err
    code = main(["colorize", str(tmp_path / "g.png"), "-o", str(tmp_path / "y.png"),
                 "--backend", "gray", "--reference", str(tmp_path / "g.png")])
    assert code == 0
    assert "takes no reference" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(bad)
    bad.write_bytes(bad.read_bytes()[:30])
    assert main(["colorize", str(bad), "-o", str(tmp_path / "z.png"), "--backend", "gray"]) == 1
    assert "truncated or corrupt" in capsys.readouterr().err
    assert not (tmp_path / "z.png").exists()


def test_backend_needing_a_reference_fails_fast(make_plugin, tmp_path, capsys, gray_image):
    from .conftest import REF_PLUGIN

    make_plugin("colorplug-refmean", {"refmean": "cp_test_refmean_cli"},
                {"cp_test_refmean_cli": REF_PLUGIN})
    Image.fromarray(gray_image).save(tmp_path / "g.png")
    assert main(["colorize", str(tmp_path / "g.png"), "-o", str(tmp_path / "o.png"),
                 "--backend", "refmean"]) == 2
    assert "needs a colour reference image: pass --reference FILE" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_uninstalled_plugin_disappears_from_list(make_plugin, tmp_path):
    site = make_plugin("colorplug-tint", {"tint": "cp_test_tint"},
                       {"cp_test_tint": PLUGIN_SOURCE.format(name="tint", a=30.0)})
    env = dict(os.environ)
    run = lambda: subprocess.run([sys.executable, "-m", "colorplug", "list"], env=env,
                                 capture_output=True, text=True, check=True).stdout
    assert "colorplug-tint" in run()
    for p in site.glob("colorplug_tint-*.dist-info"):
        for f in p.iterdir():
            f.unlink()
        p.rmdir()
    assert "tint" not in run()


def test_plugins_command_reports_failures(make_plugin, capsys):
    make_plugin("colorplug-broken", {"broken": "cp_test_broken"},
                {"cp_test_broken": "raise ImportError('needs libbar')\n"})
    with pytest.warns(RuntimeWarning):
        code = main(["plugins"])
    out = capsys.readouterr().out
    assert code == 1
    assert "broken" in out and "colorplug-broken" in out and "needs libbar" in out


# ------------------------------------------------------------------ output policy
def _gray_files(folder, names, gray_image):
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(gray_image).save(folder / name)


@pytest.mark.parametrize("names, inputs", [
    (["a.png", "a.jpg"], ["in"]),                      # one folder, two suffixes
    (["d1/x.png", "d2/x.jpg"], ["in/d1/x.png", "in/d2/x.jpg"]),  # two files, one name
])
def test_two_inputs_for_one_output_name_are_refused_before_writing(
        tmp_path, capsys, gray_image, names, inputs):
    _gray_files(tmp_path / "in", names, gray_image)
    code = main(["colorize", *[str(tmp_path / i) for i in inputs], "-o", str(tmp_path / "out"),
                 "--backend", "gray"])
    assert code == 2
    err = capsys.readouterr().err
    assert "would be written to the same output name" in err and ("x.png" in err or "a.png" in err)
    assert not (tmp_path / "out").exists()


def test_a_file_output_for_several_inputs_is_an_error_not_a_folder(tmp_path, capsys, gray_image):
    _gray_files(tmp_path, ["a.png", "b.png"], gray_image)
    code = main(["colorize", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o",
                 str(tmp_path / "two.png"), "--backend", "gray"])
    assert code == 2
    assert "names one file but 2 inputs were given" in capsys.readouterr().err
    assert not (tmp_path / "two.png").exists()


def test_an_unknown_output_suffix_is_an_error_not_a_folder(tmp_path, capsys, gray_image):
    _gray_files(tmp_path, ["a.png"], gray_image)
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "out.xyz"),
                 "--backend", "gray"]) == 2
    assert "'.xyz' is not a format colorplug writes" in capsys.readouterr().err
    assert not (tmp_path / "out.xyz").exists()


def test_skip_existing_counts_skipped_and_exits_0(tmp_path, capsys, gray_image):
    _gray_files(tmp_path / "in", ["a.png", "b.png"], gray_image)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_bytes(b"keep me")
    assert main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                 "--backend", "gray", "--skip-existing"]) == 0
    assert "1 colorized, 1 skipped, 0 failed" in capsys.readouterr().out
    assert (tmp_path / "out" / "a.png").read_bytes() == b"keep me"
    assert main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                 "--backend", "gray", "--skip-existing", "--overwrite"]) == 2


def test_empty_input_folder_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["colorize", str(tmp_path / "empty"), "-o", str(tmp_path / "out"),
                 "--backend", "gray"]) == 2
    assert "no images found in" in capsys.readouterr().err


def test_stale_temporaries_of_a_killed_run_are_cleaned(tmp_path, gray_image):
    _gray_files(tmp_path / "in", ["a.png"], gray_image)
    out = tmp_path / "out"
    out.mkdir()
    code = ("import sys; from colorplug.files import temporary_beside; "
            "temporary_beside(sys.argv[1]).write_bytes(b'half a file')")
    subprocess.run([sys.executable, "-c", code, str(out / "a.png")], check=True)
    assert len(list(out.iterdir())) == 1  # the killed run's temporary
    assert main(["colorize", str(tmp_path / "in"), "-o", str(out), "--backend", "gray"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png"]


def test_output_dtype_float32_writes_float_tiff_and_refuses_png(tmp_path, capsys, gray_image):
    _gray_files(tmp_path, ["a.png"], gray_image)
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "a_col.tif"),
                 "--backend", "gray", "--output-dtype", "float32"]) == 0
    back = read_image(tmp_path / "a_col.tif")
    assert back.dtype == np.float32 and back.shape == gray_image.shape + (3,)
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "a_col.png"),
                 "--backend", "gray", "--output-dtype", "float32"]) == 2
    assert "--output-dtype float32 needs TIFF" in capsys.readouterr().err
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "fl"),
                 "--backend", "gray", "--output-dtype", "float32", "--output-format", "tif"]) == 0
    assert read_image(tmp_path / "fl" / "a.tif").dtype == np.float32


def test_backend_options_on_the_command_line(tmp_path, capsys, gray_image):
    _gray_files(tmp_path, ["a.png"], gray_image)
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"),
                 "-b", "fusion?working_size=64"]) == 0
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "p.png"),
                 "-b", "fusion?wrking_size=64"]) == 2
    err = capsys.readouterr().err
    assert "backend 'fusion' has no option 'wrking_size'" in err and "working_size" in err


def test_quiet_prints_nothing_on_success(tmp_path, capsys, gray_image):
    _gray_files(tmp_path, ["a.png"], gray_image)
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"),
                 "--backend", "gray", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


FLAKY_PLUGIN = """
import numpy as np, colorplug
INFO = colorplug.BackendInfo(name="flaky", description="fails on images wider than 20")
class Flaky:
    info = INFO
    def colorize(self, image, *, reference=None, hints=None):
        if image.shape[1] > 20:
            raise IndexError("list index out of range")
        if image.shape[1] > 10:
            return None
        return np.zeros(image.shape[:2] + (3,), np.uint8)
    def colorize_batch(self, images, *, reference=None, hints=None):
        return [self.colorize(i) for i in images]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("flaky", lambda weights=None, device="auto", **o: Flaky(), INFO)
"""


def test_a_plugin_failing_on_one_file_does_not_stop_the_batch(make_plugin, tmp_path, capsys):
    make_plugin("colorplug-flaky", {"flaky": "cp_test_flaky"}, {"cp_test_flaky": FLAKY_PLUGIN})
    src = tmp_path / "in"
    src.mkdir()
    for name, width in [("a_wide.png", 30), ("b_mid.png", 15), ("c_ok.png", 8)]:
        Image.fromarray(np.zeros((6, width), np.uint8)).save(src / name)
    assert main(["colorize", str(src), "-o", str(tmp_path / "out"), "--backend", "flaky"]) == 1
    captured = capsys.readouterr()
    assert "1 colorized, 2 failed" in captured.out
    assert "a_wide.png: backend 'flaky' (colorplug-flaky) failed: IndexError" in captured.err
    assert "b_mid.png: backend 'flaky' (colorplug-flaky) returned NoneType" in captured.err
    assert (tmp_path / "out" / "c_ok.png").exists()


def test_decompression_bomb_is_reported_and_opt_in(tmp_path, capsys, monkeypatch):
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # stands for Pillow's 179 MP limit
    assert main(["colorize", str(tmp_path / "bomb.png"), "-o", str(tmp_path / "o.png"),
                 "--backend", "gray"]) == 1
    assert "decompression bomb" in capsys.readouterr().err
    assert main(["colorize", str(tmp_path / "bomb.png"), "-o", str(tmp_path / "o.png"),
                 "--backend", "gray", "--allow-huge-images"]) == 0


HINTS_PLUGIN = """
import numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
INFO = colorplug.BackendInfo(name="needhints", description="test: needs hints", needs_hints=True)
class NeedHints(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        return [np.zeros((2, 2, 2), np.float32) for _ in lightness]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("needhints", lambda weights=None, device="auto", **o: NeedHints(**o), INFO)
"""


def test_a_backend_needing_hints_fails_fast_like_one_needing_a_reference(
        make_plugin, tmp_path, capsys, gray_image):
    import colorplug

    make_plugin("colorplug-needhints", {"needhints": "cp_test_needhints"},
                {"cp_test_needhints": HINTS_PLUGIN})
    _gray_files(tmp_path / "in", ["a.png", "b.png"], gray_image)
    assert main(["colorize", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                 "--backend", "needhints"]) == 2
    assert "needs colour hints: pass --hints FILE" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(colorplug.MissingHintsError, match="needs colour hints"):
        colorplug.get("needhints").colorize(gray_image)
