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
                 "--backend", "gray", "-q"])
    assert code == 1
    err = capsys.readouterr()
    assert "broken.png" in err.err and "missing.png: no such file" in err.err
    assert "exists (use --overwrite" in err.err
    assert "1 colorized, 3 failed" in err.out
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
