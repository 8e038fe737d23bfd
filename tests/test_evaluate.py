import json

import numpy as np
import pytest

import colorplug
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
    text = (out / "metrics.json").read_text()
    report = json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON {c}"))
    assert "NaN" not in text  # metrics that do not apply (ΔCF to a reference) are null
    assert report["summary"]["gray"]["delta_cf_ref"] is None
    assert set(report["summary"]) == {"autoencoder", "gray"}
    gray = report["summary"]["gray"]
    assert gray["images"] == 6 and gray["cf"] == pytest.approx(0, abs=1e-9)
    assert gray["delta_cf"] == pytest.approx(gray["cf_truth"])
    assert len((out / "metrics.csv").read_text().splitlines()) == 13
    # the report is never replaced unless asked (the output policy)
    before = (out / "metrics.json").read_bytes()
    assert main(["eval", "--data", str(photo_dir), "--backend", "gray", "--out", str(out),
                 "--quiet"]) == 1
    assert "exists, left alone" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before
    from PIL import Image

    sheet = np.asarray(Image.open(out / "contact_sheet.png"))
    assert sheet.shape[:2] == (24 + 6 * 160, 4 * 160)  # labels, then 6 rows of 4 cells
    header = sheet[:24]
    for column in range(4):  # each column has a dark label over it
        assert (header[:, column * 160:(column + 1) * 160] < 100).any()


def test_backend_specs_with_options():
    assert ev.parse_backend_spec("gray") == ("gray", "gray", {})
    assert ev.parse_backend_spec("u=cgan?weights=/w/g.safetensors&working_size=256") == \
        ("u", "cgan", {"weights": "/w/g.safetensors", "working_size": 256})
    assert ev.parse_backend_spec("transfer?x=false") == ("transfer", "transfer", {"x": False})
    # decimals are numbers (fusion?temperature=0.38); nan / inf and paths stay text
    assert ev.parse_backend_spec("fusion?temperature=0.38&saturation=1e0&w=a.b&z=nan") == \
        ("fusion", "fusion", {"temperature": 0.38, "saturation": 1.0, "w": "a.b", "z": "nan"})
    with pytest.raises(colorplug.InputError, match="key=value"):
        ev.parse_backend_spec("a=b?novalue")


def test_reference_per_photo_and_delta_cf_to_the_reference(make_plugin):
    """Each photo gets its own reference; the summary reports |CF(out) - CF(ref)|."""
    make_plugin("cp-test-refcopy", {"refcopy": "cp_test_refcopy"}, {"cp_test_refcopy": '''
import numpy as np
from colorplug.hookspecs import hookimpl
from colorplug.protocol import BackendInfo
INFO = BackendInfo(name="refcopy", description="mean colour of the reference", needs_reference=True)
class C:
    info = INFO
    def colorize(self, image, *, reference=None, hints=None):
        return np.broadcast_to(np.asarray(reference)[..., :3].mean((0, 1)).astype(np.uint8),
                               np.asarray(image).shape[:2] + (3,)).copy()
    def colorize_batch(self, images, *, reference=None, hints=None):
        return [self.colorize(i, reference=reference) for i in images]
@hookimpl
def colorplug_register_colorizers(register):
    register("refcopy", lambda **kw: C(), INFO)
'''})
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    green = np.zeros((8, 8, 3), np.uint8)
    green[..., 1] = 200
    photos = [("a.png", red), ("b.png", green)]
    rows, summary, outputs = ev.evaluate(["refcopy"], photos, references={"a.png": green,
                                                                          "b.png": red})
    assert outputs["refcopy"][0][0, 0].tolist() == [0, 200, 0]   # a got b's colour
    assert summary["refcopy"]["delta_cf_ref"] < 1e-6
    assert np.isnan(ev.evaluate(["gray"], photos)[1]["gray"]["delta_cf_ref"])


def test_eval_cli_reference_pairs(photo_dir, tmp_path, capsys):
    """--reference-pairs gives each photo its own reference; the table has ΔCFref."""
    photos = sorted(p for p in photo_dir.rglob("*") if p.suffix in (".png", ".jpg"))
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("image,reference\n" + "".join(f"{p},{photos[(i + 1) % len(photos)]}\n"
                                                     for i, p in enumerate(photos)))
    assert main(["eval", "--data", str(photo_dir), "--backend", "gray", "--reference-pairs",
                 str(pairs), "--out", str(tmp_path / "r"), "-q"]) == 0
    assert "ΔCFref" in capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert report["meta"]["reference_pairs"] == str(pairs)


def test_summary_reports_confident_colour_only_where_every_row_has_it():
    """A configuration's mean confidence and confident share appear in its summary when all
    its photos were measured; a backend without confidence gets neither key."""
    def row(name, image, **conf):
        return ev.Row(name, image, 20.0, 0.9, 30.0, 40.0, 10.0, 0.1, **conf)

    sure = ev.confidence_stats(np.array([[0.9, 0.6], [0.4, 0.2]]))
    assert sure == {"confidence_mean": pytest.approx(0.525), "confident_share": 0.5}
    rows = [row("bins", "a", **sure), row("bins", "b", confidence_mean=0.1, confident_share=0.0),
            row("regress", "a"), row("regress", "b")]
    summary = ev.summarize(rows)
    assert summary["bins"]["confident_share"] == pytest.approx(0.25)
    assert summary["bins"]["confidence_mean"] == pytest.approx(0.3125)
    assert not {"confident_share", "confidence_mean"} & set(summary["regress"])


def _confidence_backend(result):
    """A backend whose predict_confidence returns `result` (a plugin author's mistake)."""
    from colorplug.pipeline import ChromaColorizer

    class Sure(ChromaColorizer):
        info = colorplug.BackendInfo(name="sure", description="test: fixed confidence")

        def predict_chroma(self, lightness, *, reference, hints):
            return [np.zeros((*lum.shape, 2), np.float32) for lum in lightness]

        def predict_confidence(self, lightness, *, reference):
            return result

    return Sure()


def test_confidence_is_upsampled_to_the_input_and_broken_maps_blame_the_backend():
    gray = np.zeros((30, 50), np.uint8)
    half = np.tile(np.array([[0.0, 1.0]], np.float32), (3, 1))  # left 0, right 1
    conf = _confidence_backend([half]).confidence(gray)
    assert conf.shape == (30, 50) and conf.dtype == np.float32
    assert conf[:, :5].max() < 0.05 and conf[:, -5:].min() > 0.95
    for bad, message in (([np.full((3, 3), np.nan)], "shaped \\(3, 3\\) or not finite"),
                         ([half, half], "returned 2 confidence maps for 1 image"),
                         ([np.zeros((3, 3, 2))], "shaped \\(3, 3, 2\\)"),
                         (["sure"], "not numeric"), ([], "returned 0 confidence maps")):
        with pytest.raises(colorplug.BackendError, match=f"backend 'sure'.*{message}"):
            _confidence_backend(bad).confidence(gray)
