import json

import numpy as np
import pytest

from colorplug import color
from colorplug import evaluate as ev
from colorplug.cli import main


def test_psnr_known_value():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 10  # MSE = 100 / 300
    assert ev.psnr(b, a) == pytest.approx(10 * np.log10(255 ** 2 / (100 / 300)), abs=1e-9)
    assert ev.psnr(a, a) == float("inf")


def test_ssim_known_values():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ev.ssim(a, a) == pytest.approx(1.0)
    assert ev.ssim(255 - a, a) < 0


def test_colourfulness_known_values():
    assert ev.colourfulness(np.full((4, 4, 3), 128, np.uint8)) == 0.0
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    # rg = 200, yb = 100 everywhere: sigma 0, mu = hypot(200, 100)
    assert ev.colourfulness(red) == pytest.approx(0.3 * np.hypot(200, 100))
    half = red.copy()
    half[:2] = 0  # half red, half black: sigma_rg = 100, sigma_yb = 50, mu = hypot(100, 50)
    assert ev.colourfulness(half) == pytest.approx(np.hypot(100, 50) + 0.3 * np.hypot(100, 50))


def test_ciede2000_matches_sharma_table():
    # Sharma, Wu & Dalal (2005), test pair 1: dE00 = 2.0425
    from skimage.color import deltaE_ciede2000

    assert deltaE_ciede2000(np.array([50, 2.6772, -79.7751]),
                            np.array([50, 0, -82.7485])) == pytest.approx(2.0425, abs=1e-4)
    a = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert ev.delta_e2000(a, a) == 0.0
    assert ev.delta_e2000(ev.gray_input(a)[..., None].repeat(3, -1), a) > 1


def test_gray_input_has_the_photo_lightness():
    a = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    g = ev.gray_input(a)
    diff = color.lightness_from_gray(g / 255.0) - color.lightness_from_rgb(a / 255.0)
    assert np.abs(diff).max() < 0.3  # 8-bit rounding only


def test_eval_cli_writes_report(photo_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval", "--data", str(photo_dir), "--backend", "autoencoder", "--backend",
                 "gray", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "autoencoder" in table and "gray" in table and "ΔCF" in table
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["summary"]) == {"autoencoder", "gray"}
    gray = report["summary"]["gray"]
    assert gray["images"] == 6 and gray["cf"] == pytest.approx(0, abs=1e-9)
    assert gray["delta_cf"] == pytest.approx(gray["cf_truth"])
    assert len((out / "metrics.csv").read_text().splitlines()) == 13
    from PIL import Image

    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.size == (4 * 160, 6 * 160)  # gray | autoencoder | gray | truth, 6 rows
