"""The GIMP 3 plug-in, run in real GIMP (gimp-console-3.0, batch mode, headless).

Where `gimp-console-3.0` is on PATH it is used directly. Otherwise, as root, the project's
chroot recipe (../shared/tools/gimp3/run_gimp3_batch.sh, or $COLORPLUG_GIMP_RUNNER) runs
Debian trixie's GIMP 3.0.4, with the host's Python reached through `host-run`. Without
either the tests skip with that reason. Each test is one GIMP run (about 5 s).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import colorplug
from colorplug import gimp_install
from colorplug.image import write_image

from .conftest import REF_PLUGIN, REPO

pytestmark = pytest.mark.slow  # each test is a real GIMP run: pytest -m slow

SCENARIO = Path(__file__).parent / "gimp" / "scenario.py"
RUNNER = Path(os.environ.get("COLORPLUG_GIMP_RUNNER",
                             REPO.parent / "shared" / "tools" / "gimp3" / "run_gimp3_batch.sh"))
NATIVE = shutil.which("gimp-console-3.0")
if not NATIVE and not (RUNNER.exists() and os.geteuid() == 0):
    pytest.skip("no GIMP 3: neither gimp-console-3.0 on PATH nor (as root) the chroot "
                f"runner {RUNNER}", allow_module_level=True)



def run_gimp(tmp_path: Path, image: np.ndarray, args: dict, *, reference: np.ndarray | None = None,
             select: list[int] | None = None, pythonpath: str = "",
             hints: np.ndarray | None = None, hints_offset: tuple[int, int] = (0, 0),
             python: str | None = None, repeat: int = 1,
             env_extra: dict[str, str] | None = None,
             worker_env: dict[str, str] | None = None) -> dict:
    """Install the plug-in with `colorplug gimp install`, run one scenario in GIMP."""
    work = tmp_path / "gimp"
    (work / "tmp").mkdir(parents=True)
    plugin = gimp_install.install(work / "gimpdir")
    write_image(work / "input.png", image)  # 16-bit colour PNGs too
    spec = {"input": str(work / "input.png"), "out": str(work), "args": args,
            "select": select, "repeat": repeat}
    if reference is not None:
        Image.fromarray(reference).save(work / "reference.png")
        spec["reference"] = str(work / "reference.png")
    if hints is not None:
        Image.fromarray(hints).save(work / "hints.png")
        spec["hints"] = str(work / "hints.png")
        spec["hints_offset"] = list(hints_offset)
    (work / "spec.json").write_text(json.dumps(spec))
    # this checkout's colorplug (not whichever one the venv has installed), plus plugins
    paths = os.pathsep.join(p for p in (pythonpath, str(REPO)) if p)
    extra = "".join(f" {k}={v}" for k, v in (worker_env or {}).items())
    env_python = f"/usr/bin/env PYTHONPATH={paths}{extra} {python or sys.executable}"
    if NATIVE:
        env = dict(os.environ, GIMP3_DIRECTORY=str(work / "gimpdir"), TMPDIR=str(work / "tmp"),
                   COLORPLUG_PYTHON=env_python, **(env_extra or {}))
        code = (f"import sys; sys.argv = [{str(SCENARIO)!r}, {str(work / 'spec.json')!r}]; "
                f"exec(open({str(SCENARIO)!r}).read())")
        cmd = [NATIVE, "-i", "--batch-interpreter", "python-fu-eval", "-b", code, "--quit"]
    else:
        env = dict(os.environ)
        cmd = [str(RUNNER), "batch", "--host-escape", "--plugin", str(plugin),
               "--bind", str(tmp_path), "--env", f"TMPDIR={work / 'tmp'}",
               "--env", f"COLORPLUG_PYTHON=host-run {env_python}",
               *[a for k, v in (env_extra or {}).items() for a in ("--env", f"{k}={v}")],
               str(SCENARIO), str(work / "spec.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    summary_path = work / "summary.json"
    assert summary_path.exists(), f"GIMP run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    summary = json.loads(summary_path.read_text())
    summary["log"] = proc.stderr
    summary["tmp_left"] = sorted(p.name for p in (work / "tmp").iterdir()
                                 if p.name.startswith("colorplug-gimp"))
    worker_log = work / "tmp" / f"colorplug-worker-{os.getuid()}" / "worker.log"
    summary["worker_log"] = worker_log.read_text() if worker_log.exists() else ""
    for layer in summary["layers"]:
        dtype = np.dtype("<u2") if layer["depth"] == 16 else np.uint8
        layer["pixels"] = np.fromfile(layer["path"], dtype=dtype).reshape(
            layer["height"], layer["width"], 4)
    return summary


@pytest.fixture
def gray8() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64]
    img = (x * 3 + y * 2).astype(np.uint8)
    img[10:30, 20:40] = 210
    return img


def test_gray_image_gets_a_new_colour_layer_matching_the_api(tmp_path, gray8):
    s = run_gimp(tmp_path, gray8, {"backend": "autoencoder", "device": "cpu"})
    assert s["status"] == "success", s["error"]
    assert s["base_type"] == 0  # converted to RGB to hold colour
    names = [layer["name"] for layer in s["layers"]]
    assert names == ["Background (colorized: autoencoder)", "Background"]
    expected = colorplug.get("autoencoder", device="cpu", intensity_range="dtype").colorize(gray8)
    got = s["layers"][0]["pixels"][..., :3]
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert (s["layers"][1]["pixels"][..., 0] == gray8).all()  # source layer untouched
    assert s["tmp_left"] == []  # temporary pixel files removed


def test_rgb_with_alpha_and_selection(tmp_path, gray8):
    rgb = np.stack([gray8, np.roll(gray8, 5, 1), 255 - gray8], -1).astype(np.uint8)
    alpha = np.tile(np.linspace(30, 255, 64).astype(np.uint8), (48, 1))
    rgba = np.dstack([rgb, alpha])
    s = run_gimp(tmp_path, rgba, {"backend": "autoencoder", "device": "cpu"},
                 select=[8, 6, 30, 20])
    assert s["status"] == "success", s["error"]
    new = s["layers"][0]["pixels"]
    assert s["layers"][0]["alpha"] and (new[..., 3] == alpha).all()  # alpha kept
    expected = colorplug.get("autoencoder", device="cpu").colorize(rgba)
    inside = np.zeros((48, 64), bool)
    inside[6:26, 8:38] = True
    diff = np.abs(new[..., :3].astype(int) - expected[..., :3].astype(int)).max(-1)
    assert diff[inside].max() <= 1                       # selected area colorized
    assert (new[~inside][..., :3] == rgb[~inside]).all()  # the rest unchanged
    assert "already has colour" in s["log"]  # the user is warned colour gets replaced


def test_reference_layer_and_high_bit_depth(tmp_path, make_plugin):
    site = make_plugin("colorplug-refmean", {"refmean": "cp_test_refmean"},
                       {"cp_test_refmean": REF_PLUGIN})
    # A reference colour layer needs an RGB image (GIMP converts layers of GRAY images to
    # gray), so the photo to colorize is a gray-looking layer of a 16-bit RGB image.
    gray16 = (np.linspace(0, 65535, 40 * 30).reshape(30, 40)).astype(np.uint16)
    ref = np.zeros((16, 16, 3), np.uint8)
    ref[...] = (40, 160, 60)  # green
    s = run_gimp(tmp_path, np.repeat(gray16[..., None], 3, -1), {"backend": "refmean"},
                 reference=ref, pythonpath=str(site))
    assert s["status"] == "success", s["error"]
    assert "U16" in s["precision"]
    out = s["layers"][0]["pixels"]
    assert out.dtype == np.uint16
    expected = colorplug.registry.Registry().get("refmean", intensity_range="dtype",
                                                 output_dtype="uint16").colorize(gray16, reference=ref)
    assert np.abs(out[..., :3].astype(int) - expected.astype(int)).max() <= 64  # 16-bit rounding
    lab = colorplug.color.rgb_to_lab(out[..., :3] / 65535.0)
    assert lab[15, 20, 1] < -20  # green: negative a*


HINTS_PLUGIN = '''
import numpy as np, colorplug
from colorplug import color
from colorplug.pipeline import ChromaColorizer
INFO = colorplug.BackendInfo(name="hintpaint", description="test: paints where hints are opaque",
                             supports_hints=True)
class HintPaint(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        mask = hints[..., 3] > 0
        lab = color.rgb_to_lab(hints[..., :3] / 255.0)
        ab = np.zeros(mask.shape + (2,), np.float32)
        ab[mask] = lab[mask][:, 1:]
        return [ab for _ in lightness]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("hintpaint", lambda weights=None, device="auto", **o: HintPaint(**o), INFO)
'''


def test_hints_layer_is_read_in_the_target_s_coordinates(tmp_path, gray8, make_plugin):
    site = make_plugin("colorplug-hintpaint", {"hintpaint": "cp_test_hintpaint"},
                       {"cp_test_hintpaint": HINTS_PLUGIN})
    strokes = np.zeros((20, 20, 4), np.uint8)
    strokes[5:10, 5:10] = (230, 20, 20, 255)  # a red stroke on a small, offset layer
    rgb = np.repeat(np.full((48, 64), 120, np.uint8)[..., None], 3, -1)
    s = run_gimp(tmp_path, rgb, {"backend": "hintpaint"}, hints=strokes, hints_offset=(30, 12),
                 pythonpath=str(site))
    assert s["status"] == "success", s["error"]
    names = [layer["name"] for layer in s["layers"]]
    out = s["layers"][names.index("Background (colorized: hintpaint)")]["pixels"][..., :3]
    lab = colorplug.color.rgb_to_lab(out / 255.0)
    assert lab[12 + 7, 30 + 7, 1] > 20           # the stroke, at its place in the image
    assert np.abs(lab[0:10, 0:20, 1:]).max() < 1  # no hint elsewhere: gray


def test_hints_on_a_gray_image_stop_before_the_model(tmp_path, gray8, make_plugin):
    """Issue 28 item 9: GIMP greys the hints layer of a GRAY image; the result was fully
    gray and reported as success."""
    site = make_plugin("colorplug-hintpaint", {"hintpaint": "cp_test_hintpaint2"},
                       {"cp_test_hintpaint2": HINTS_PLUGIN})
    strokes = np.zeros((20, 20, 4), np.uint8)
    strokes[5:10, 5:10] = (230, 20, 20, 255)
    s = run_gimp(tmp_path, gray8, {"backend": "hintpaint"}, hints=strokes,
                 hints_offset=(30, 12), pythonpath=str(site))
    assert s["status"] == "execution-error"
    assert "hints need colour" in s["error"] and "Image \u25b8 Mode \u25b8 RGB" in s["error"]
    assert s["base_type"] == 1  # still GRAY: nothing was changed
    assert not any("colorized" in layer["name"] for layer in s["layers"])


def test_error_reaches_gimp_and_image_is_unchanged(tmp_path, gray8, make_plugin):
    site = make_plugin("colorplug-refmean", {"refmean": "cp_test_refmean2"},
                       {"cp_test_refmean2": REF_PLUGIN})
    s = run_gimp(tmp_path, gray8, {"backend": "refmean"}, pythonpath=str(site))
    assert s["status"] == "execution-error"
    assert "needs a colour reference" in s["error"]
    assert [layer["name"] for layer in s["layers"]] == ["Background"]
    assert s["base_type"] == 1  # still a GRAY image: nothing was changed
    assert (s["layers"][0]["pixels"][..., 0] == gray8).all()
    assert s["tmp_left"] == []


def test_missing_python_is_reported(tmp_path, gray8):
    s = run_gimp(tmp_path, gray8, {"backend": "autoencoder"}, python="/nonexistent/python3")
    assert s["status"] == "execution-error"
    assert "python" in s["error"].lower() and "colorplug gimp install" in s["error"]


def test_install_and_uninstall(tmp_path, capsys):
    from colorplug.cli import main

    assert main(["gimp", "install", "--gimp-dir", str(tmp_path)]) == 0
    target = tmp_path / "plug-ins" / "colorplug_gimp" / "colorplug_gimp.py"
    assert target.exists() and os.access(target, os.X_OK)
    cfg = json.loads((target.parent / "colorplug_gimp.json").read_text())
    assert cfg["python"] == [sys.executable]
    assert main(["gimp", "uninstall", "--gimp-dir", str(tmp_path)]) == 0
    assert not target.parent.exists()


def test_later_runs_reuse_one_warm_worker(tmp_path, gray8):
    s = run_gimp(tmp_path, gray8, {"backend": "autoencoder", "device": "cpu"}, repeat=3)
    assert s["status"] == "success", s["error"]
    names = [layer["name"] for layer in s["layers"]]
    assert len(names) == 4 and all(n.startswith("Background (colorized: autoencoder)")
                                   for n in names[:3])
    assert s["worker_log"].count("listening") == 1  # one worker for the GIMP session
    assert s["tmp_left"] == []


# A reference backend whose loading leaves a mark: the plug-in must stop before it.
MARKED_REF_PLUGIN = REF_PLUGIN.replace(
    'register("refmean", lambda weights=None, device="auto", **o: RefMean(**o), INFO)',
    'import os\n    def build(weights=None, device="auto", **o):\n'
    '        open(os.environ["CP_TEST_MARK"], "a").write("loaded\\n")\n'
    '        return RefMean(**o)\n    register("refmean", build, INFO)')


def test_missing_reference_fails_before_a_model_loads_in_gimp_words(tmp_path, gray8,
                                                                    make_plugin):
    site = make_plugin("colorplug-refmean", {"refmean": "cp_test_refmean3"},
                       {"cp_test_refmean3": MARKED_REF_PLUGIN})
    mark = tmp_path / "loaded.txt"
    rgb = np.repeat(gray8[..., None], 3, -1)
    s = run_gimp(tmp_path, rgb, {"backend": "refmean"}, pythonpath=str(site),
                 env_extra={"CP_TEST_MARK": str(mark)})
    assert s["status"] == "execution-error"
    assert '"Reference layer"' in s["error"] and "Image \u25b8 Mode \u25b8 RGB" in s["error"]
    assert "reference=" not in s["error"] and "--reference" not in s["error"]
    assert not mark.exists()  # no model was loaded
    assert [layer["name"] for layer in s["layers"]] == ["Background"]


def test_reference_on_a_gray_image_says_image_mode_rgb(tmp_path, gray8, make_plugin):
    site = make_plugin("colorplug-refmean", {"refmean": "cp_test_refmean4"},
                       {"cp_test_refmean4": REF_PLUGIN})
    ref = np.zeros((16, 16, 3), np.uint8)
    ref[...] = (40, 160, 60)
    s = run_gimp(tmp_path, gray8, {"backend": "refmean"}, reference=ref, pythonpath=str(site))
    assert s["status"] == "execution-error"
    assert "Image \u25b8 Mode \u25b8 RGB" in s["error"]
    assert s["base_type"] == 1 and len(s["layers"]) == 2  # nothing changed


def test_no_cuda_is_worded_for_gimp(tmp_path, gray8):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    s = run_gimp(tmp_path, gray8, {"backend": "autoencoder", "device": "cuda"})
    assert s["status"] == "execution-error"
    assert "Device \u25b8 cpu" in s["error"] and "device='cpu'" not in s["error"]


def test_your_weights_are_offered_under_weights_and_used(tmp_path, gray8, monkeypatch):
    """Weights trained with `colorplug train --name` appear in the Weights choice and the
    layer is colorized with them, as get(backend, weights=NAME) does (issue 32)."""
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        light = np.clip(np.linspace(0, 1, 64)[None, :] + rng.uniform(0, 0.2), 0, 1)
        rgb = np.stack([light, 0.3 * light, 1 - light], -1).repeat(48, 0)
        write_image(data / f"p{i}.png", (rgb * 255).astype(np.uint8))
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    r = subprocess.run([sys.executable, "-m", "colorplug", "train", "autoencoder", "--from",
                        "default", "--data", str(data), "--name", "mine", "--epochs", "2",
                        "--steps-per-epoch", "2", "--batch-size", "4", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    s = run_gimp(tmp_path, gray8, {"backend": "autoencoder", "weights": "mine",
                                   "device": "cpu"},
                 worker_env={"XDG_DATA_HOME": str(home)})
    assert s["status"] == "success", s["error"]
    expected = colorplug.get("autoencoder", weights="mine", device="cpu",
                             intensity_range="dtype").colorize(gray8)
    default = colorplug.get("autoencoder", device="cpu", intensity_range="dtype").colorize(gray8)
    got = s["layers"][0]["pixels"][..., :3]
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(got.astype(int) - default.astype(int)).max() > 1


def test_the_runtime_choice_reaches_colorplug(tmp_path, gray8):
    """Runtime ▸ onnx in GIMP runs fusion's exported network (exported by the worker into
    its cache) and matches the API's torch result within 1/255; a backend that runs with
    torch only says so in GIMP's words before a model loads."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    cache = tmp_path / "cache"
    s = run_gimp(tmp_path / "a", gray8, {"backend": "fusion", "device": "cpu",
                                         "runtime": "onnx"},
                 worker_env={"COLORPLUG_CACHE": str(cache)})
    assert s["status"] == "success", s["error"]
    expected = colorplug.get("fusion", device="cpu", intensity_range="dtype").colorize(gray8)
    got = s["layers"][0]["pixels"][..., :3]
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    assert len(list((cache / "weights").glob("fusion-*.onnx"))) == 1  # the worker's export
    s = run_gimp(tmp_path / "b", gray8, {"backend": "autoencoder", "device": "cpu",
                                         "runtime": "onnx"},
                 worker_env={"COLORPLUG_CACHE": str(cache)})
    assert s["status"] == "execution-error"
    assert "runs with torch only: choose Runtime \u25b8 torch" in s["error"]
    assert [layer["name"] for layer in s["layers"]] == ["Background"]
