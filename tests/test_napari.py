"""The napari dock widget, in a real (offscreen, Xvfb) viewer with pytest-qt."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="napari extra not installed: pip install -e '.[napari]'")
if not os.environ.get("DISPLAY") and not shutil.which("Xvfb"):
    pytest.skip("napari's viewer needs a display: install xvfb (see README)", allow_module_level=True)

from colorplug import color  # noqa: E402

from .conftest import REF_PLUGIN  # noqa: E402
from napari_colorize._core import colorize_stack  # noqa: E402
from napari_colorize._widget import SYNC_ENV, ColorizeWidget  # noqa: E402

SLOW_PLUGIN = '''
import time, numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
INFO = colorplug.BackendInfo(name="slowpaint", description="test: 0.2 s per plane")
class Slow(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        time.sleep(0.2)
        return [np.full((2, 2, 2), [0.0, 40.0], np.float32) for _ in lightness]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("slowpaint", lambda weights=None, device="auto", **o: Slow(**o), INFO)
'''



@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    import napari.utils.notifications as notes

    monkeypatch.setattr(notes, "show_error", lambda msg: shown.append(str(msg)))
    return shown


@pytest.fixture
def notices(monkeypatch):
    """Warnings and infos the widget shows (napari notifications), in order."""
    shown: list[str] = []
    import napari.utils.notifications as notes

    monkeypatch.setattr(notes, "show_warning", lambda msg: shown.append(str(msg)))
    monkeypatch.setattr(notes, "show_info", lambda msg: shown.append(str(msg)))
    return shown


@pytest.fixture
def sync(monkeypatch):
    monkeypatch.setenv(SYNC_ENV, "1")


def input_lightness(data, lo, hi):
    return color.lightness_from_gray(np.clip((data.astype(np.float64) - lo) / (hi - lo), 0, 1))


def test_viewer_runs_on_a_supported_qt_binding(make_napari_viewer, recwarn):
    """napari 0.9 deprecates PyQt5 ("removed in fall of 2026"): the extra and the tests use
    Qt 6; no deprecation warning at start, and the widget's controls are Qt 6 widgets."""
    import qtpy

    viewer = make_napari_viewer()
    widget = ColorizeWidget(viewer)
    assert qtpy.API_NAME in ("PyQt6", "PySide6"), qtpy.API_NAME
    assert type(widget.native).__module__.split(".")[0] in ("PyQt6", "PySide6")
    assert not [w for w in recwarn if "PyQt5" in str(w.message)]


def test_gray_2d_layer_becomes_rgb_layer(make_napari_viewer, sync, errors, gray_image):
    viewer = make_napari_viewer()
    layer = viewer.add_image(gray_image, name="cells", scale=(0.5, 0.25), translate=(3, 4),
                             contrast_limits=(0, 255))
    widget = ColorizeWidget(viewer)
    assert widget.image.value is layer and widget.backend.value == "fusion"  # the default
    widget.backend.value = "autoencoder"
    widget.device.value = "cpu"
    widget.run()
    assert errors == []
    out = viewer.layers[-1]
    assert out is widget.result_layer and out.rgb
    assert out.name == "cells (colorized: autoencoder)"
    assert out.data.shape == gray_image.shape + (3,) and out.data.dtype == np.uint8
    assert np.allclose(out.scale, layer.scale) and np.allclose(out.translate, layer.translate)
    dl = color.lightness_from_rgb(out.data / 255.0) - input_lightness(gray_image, 0, 255)
    assert np.abs(dl).mean() < 1.0


def test_uint16_stack_uses_contrast_limits(make_napari_viewer, sync, errors):
    rng = np.random.default_rng(0)
    stack = (rng.random((4, 30, 40)) * 3000 + 1000).astype(np.uint16)
    viewer = make_napari_viewer()
    layer = viewer.add_image(stack, name="zstack", contrast_limits=(1500, 3500))
    widget = ColorizeWidget(viewer)
    widget.backend.value = "gray"
    widget.run()
    out = widget.result_layer
    assert out.data.shape == (4, 30, 40, 3)
    expected = input_lightness(stack, 1500, 3500)
    assert np.abs(color.lightness_from_rgb(out.data / 255.0) - expected).mean() < 0.5
    assert layer.contrast_limits == [1500, 3500]


def test_dask_stack_is_read_plane_by_plane(make_napari_viewer, sync, errors):
    da = pytest.importorskip("dask.array")
    reads: list[tuple] = []

    def load(block, block_info=None):
        reads.append(block_info[0]["chunk-location"])
        return block

    base = (np.arange(3 * 20 * 24) % 251).reshape(3, 20, 24).astype(np.uint8)
    lazy = da.from_array(base, chunks=(1, 20, 24)).map_blocks(load, dtype=np.uint8)
    viewer = make_napari_viewer()
    viewer.add_image(lazy, name="lazy", contrast_limits=(0, 255))
    reads.clear()
    widget = ColorizeWidget(viewer)
    widget.backend.value = "gray"
    widget.run()
    assert widget.result_layer.data.shape == (3, 20, 24, 3)
    assert sorted(set(reads)) == [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    assert len(reads) == 3  # each plane read once, never the whole array


def test_reference_layer_steers_backend(make_napari_viewer, sync, errors, make_plugin):
    make_plugin("colorplug-refmean", {"refmean": "cp_test_refmean"}, {"cp_test_refmean": REF_PLUGIN})
    viewer = make_napari_viewer()
    gray = viewer.add_image(np.full((20, 30), 120, np.uint8), name="gray")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "refmean"
    assert not widget.reference.native.isHidden() and widget.hints.native.isHidden()
    assert widget.working_size.native.isHidden()  # refmean has no working size option
    widget.run()
    assert "needs a colour reference: choose an RGB image layer as Reference" in errors[-1]
    viewer.add_image(np.full((10, 10), 50, np.uint8), name="gray ref")
    widget.image.value = gray
    widget.reference.value = viewer.layers["gray ref"]
    widget.run()
    assert "grayscale" in errors[-1]
    red = np.zeros((10, 10, 3), np.uint8)
    red[...] = (200, 40, 40)
    viewer.add_image(red, name="red ref", rgb=True)
    widget.image.value = gray
    widget.reference.value = viewer.layers["red ref"]
    widget.run()
    lab = color.rgb_to_lab(widget.result_layer.data / 255.0)
    assert lab[..., 1].mean() > 30  # red reference -> red output
    assert len(errors) == 2
    # an RGB layer without colour: napari's words, not the API's "pass reference=..."
    viewer.add_image(np.full((10, 10, 3), 128, np.uint8), name="gray rgb", rgb=True)
    widget.image.value = gray
    widget.reference.value = viewer.layers["gray rgb"]
    widget.run()
    assert "choose an RGB (colour) image layer as Reference" in errors[-1]
    assert "reference=" not in errors[-1] and "--reference" not in errors[-1]


def test_working_size_reaches_fusion_bounded_by_the_image(make_napari_viewer, sync, errors):
    viewer = make_napari_viewer()
    viewer.add_image(np.full((40, 300), 128, np.uint8), name="g")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "fusion"
    assert not widget.working_size.native.isHidden() and widget.working_size.value == 256
    widget.working_size.value = 100  # not a multiple of 8: colorplug's error, as a notification
    widget.run()
    assert "working_size must be a multiple of 8" in errors[-1]
    widget.working_size.value = 64
    widget.run()
    assert widget.result_layer.data.shape == (40, 300, 3)
    # 4096 on a 300-pixel-wide image: bounded by the image (a multiple of 8), not 4096
    widget.working_size.value = 4096
    assert widget._request()["options"]["working_size"] == 304
    viewer.add_image(np.full((20, 12), 128, np.uint8), name="tiny")
    widget.image.value = viewer.layers["tiny"]
    assert widget._request()["options"]["working_size"] == 64
    widget.working_size.value = 32  # smaller than the bound: the user's value is kept
    assert widget._request()["options"]["working_size"] == 32


def test_errors_are_notifications(make_napari_viewer, sync, errors, monkeypatch, tmp_path):
    viewer = make_napari_viewer()
    widget = ColorizeWidget(viewer)
    widget.run()
    assert "no image layer" in errors[-1]
    viewer.add_image(np.zeros((8, 8), np.uint8), name="img")
    widget.device.value = "cuda"
    import torch

    if not torch.cuda.is_available():
        widget.run()
        assert "CUDA is not available" in errors[-1]
        # napari's words (item 6): the Device control, not the API's device='cpu'
        assert "Device ▸ cpu" in errors[-1] and "device=" not in errors[-1]
        assert len(viewer.layers) == 1
    widget.device.value = "cpu"
    monkeypatch.setenv("COLORPLUG_WEIGHTS_DIR", str(tmp_path))  # an empty weights folder
    import colorplug.weights as w

    monkeypatch.setattr(w, "SHIPPED_DIR", w.SHIPPED_DIR.parent / "no-weights-here")
    widget.run()
    assert "not found" in errors[-1] and len(viewer.layers) == 1
    widget.backend.value = "gray"
    widget.run()  # still usable after errors
    assert len(viewer.layers) == 2


def test_third_party_backend_in_chooser(make_napari_viewer, make_plugin):
    make_plugin("colorplug-slowpaint", {"slowpaint": "cp_test_slowpaint"},
                {"cp_test_slowpaint": SLOW_PLUGIN})
    widget = ColorizeWidget(make_napari_viewer())
    assert "slowpaint" in widget.backend.choices
    widget.backend.value = "slowpaint"
    assert widget.description.value == "test: 0.2 s per plane"


def test_threaded_run_and_cancel_mid_stack(make_napari_viewer, qtbot, make_plugin, errors,
                                           notices):
    make_plugin("colorplug-slowpaint", {"slowpaint": "cp_test_slowpaint2"},
                {"cp_test_slowpaint2": SLOW_PLUGIN})
    viewer = make_napari_viewer()
    viewer.add_image(np.full((3, 12, 12), 100, np.uint8), name="short")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "slowpaint"
    widget.run()  # threaded: returns at once
    assert not widget.run_button.enabled and widget.cancel_button.enabled
    qtbot.waitUntil(lambda: widget.result_layer is not None, timeout=10000)
    assert widget.result_layer.data.shape == (3, 12, 12, 3)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=5000)

    viewer.add_image(np.full((40, 12, 12), 100, np.uint8), name="long")
    widget.image.value = viewer.layers["long"]
    planes: list[int] = []
    widget.run()
    widget.worker.yielded.connect(planes.append)
    qtbot.waitUntil(lambda: len(planes) >= 1, timeout=10000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=10000)
    assert len(planes) < 40
    assert widget.stages[0] == ("loading", "slowpaint")  # a loading stage before planes
    assert any("cancelled" in n for n in notices)  # the user is told, not left guessing
    assert [l.name for l in viewer.layers] == ["short", "short (colorized: slowpaint)", "long"]
    assert errors == []


# Counts the planes it computes: 0.3 s each, so a batch of four takes 1.2 s.
COUNTING_PLUGIN = '''
import time, numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
COMPUTED = []
INFO = colorplug.BackendInfo(name="slowplane", description="test: 0.3 s per plane")
class Slow(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        out = []
        for lum in lightness:
            time.sleep(0.3)
            COMPUTED.append(1)
            out.append(np.full((2, 2, 2), [0.0, 40.0], np.float32))
        return out
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("slowplane", lambda weights=None, device="auto", **o: Slow(**o), INFO)
'''


def test_cancel_never_waits_for_more_than_one_large_plane(make_napari_viewer, qtbot,
                                                         make_plugin, errors, notices):
    """Issue 28 item 7: cancel waited for a whole batch of 4 planes (148 s on an exemplar
    stack) and progress showed nothing until a batch was done. Counted, not timed: planes
    computed after the cancel click."""
    make_plugin("colorplug-slowplane", {"slowplane": "cp_test_slowplane"},
                {"cp_test_slowplane": COUNTING_PLUGIN})
    import importlib

    viewer = make_napari_viewer()
    viewer.add_image(np.full((12, 512, 512), 100, np.uint8), name="large")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "slowplane"
    planes: list = []
    widget.run()
    widget.worker.yielded.connect(planes.append)
    qtbot.waitUntil(lambda: any(p[0] == "plane" for p in planes), timeout=30000)
    computed = importlib.import_module("cp_test_slowplane").COMPUTED
    first_progress_after = len(computed)
    widget.cancel()
    at_cancel = len(computed)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=30000)
    assert first_progress_after == 1  # progress after the first plane, not a batch
    assert len(computed) - at_cancel <= 1  # at most the plane under way when clicked
    assert widget.result_layer is None and errors == []


def test_colorize_stack_never_reads_whole_array():
    class Planes:
        shape, dtype, ndim = (5, 6, 7), np.dtype(np.uint8), 3

        def __getitem__(self, idx):
            assert len(idx) == 1, "only single planes may be read"
            return np.full((6, 7), 40 * idx[0], np.uint8)

        def __array__(self, *a, **k):
            raise AssertionError("the whole stack was loaded")

    from colorplug.backends.gray import GrayColorizer

    steps = list(colorize_stack(Planes(), GrayColorizer(), rgb=False))
    assert [s[0] for s in steps] == [1, 2, 3, 4, 5, 5]
    assert steps[-1][2][3, 0, 0, 0] == 120


def test_exemplar_takes_colours_from_a_reference_layer(make_napari_viewer, sync, errors):
    """The real exemplar backend with its shipped weights: a blue reference layer gives a
    blue result, an orange one an orange result; the result keeps the input's size."""
    viewer = make_napari_viewer()
    ramp = np.tile(np.linspace(40, 220, 120, dtype=np.float32), (80, 1)).astype(np.uint8)
    gray = viewer.add_image(ramp, name="gray")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "exemplar"
    assert not widget.reference.native.isHidden() and not widget.working_size.native.isHidden()
    results = {}
    for name, rgb in (("blue", (40, 90, 220)), ("orange", (230, 140, 30))):
        ref = np.zeros((64, 64, 3), np.uint8)
        ref[...] = rgb
        ref = (ref * np.linspace(0.5, 1.0, 64)[None, :, None]).astype(np.uint8)
        viewer.add_image(ref, name=f"{name} ref", rgb=True)
        widget.image.value = gray
        widget.reference.value = viewer.layers[f"{name} ref"]
        widget.run()
        assert widget.result_layer.data.shape == (80, 120, 3)
        results[name] = color.rgb_to_lab(widget.result_layer.data / 255.0)
    assert results["blue"][..., 2].mean() < -10 < results["orange"][..., 2].mean()
    assert not errors


# A user's session: the viewer (and so Mesa's libLLVM) exists before the widget is opened
# through napari's plugin menu; then a torch-heavy backend runs, then torch.optim is
# imported (as a pytest run's training tests do). Before the fix: segfault, exit 139.
VIEWER_FIRST = r'''
import sys
import numpy as np
import napari
import napari.utils.notifications as notes

errors = []
notes.show_error = lambda msg: errors.append(str(msg))
viewer = napari.Viewer(show=False)
gray = viewer.add_image(np.tile(np.linspace(30, 220, 48).astype(np.uint8), (40, 1)), name="gray")
ref = np.zeros((32, 32, 3), np.uint8)
ref[...] = (40, 90, 220)
viewer.add_image(ref, name="blue", rgb=True)
viewer.window._qt_viewer.canvas.native.update()
from qtpy.QtWidgets import QApplication
QApplication.processEvents()
_, widget = viewer.window.add_plugin_dock_widget("colorplug", "Colorize")
widget.image.value = gray
widget.backend.value = sys.argv[1]
widget.device.value = "cpu"
widget.reference.value = viewer.layers["blue"]
widget.run()
assert not errors, errors
print("result", widget.result_layer.data.shape, flush=True)
import torch.optim  # noqa: E402,F401 - imports torch._dynamo, hence triton
print("optim ok", flush=True)
viewer.close()
'''


@pytest.mark.slow  # a viewer in a subprocess
@pytest.mark.parametrize("backend", ["cgan", "exemplar"])
def test_torch_backends_after_viewer_exists_do_not_crash(backend, tmp_path):
    import subprocess
    import sys

    from .conftest import REPO

    import qtpy

    # the binding this test session runs on (PyQt6 here), not qtpy's PyQt5-first guess
    env = dict(os.environ, COLORPLUG_NAPARI_SYNC="1", OMP_NUM_THREADS="1", QT_API=qtpy.API,
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                          if p))
    env.pop("COLORPLUG_DISABLE_PLUGINS", None)
    proc = subprocess.run([sys.executable, "-c", VIEWER_FIRST, backend], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    assert "result (40, 48, 3)" in proc.stdout and "optim ok" in proc.stdout


# Issue 28 item 1: a script or notebook makes a viewer, then calls the API (no widget).
SCRIPT_FIRST = """
import sys
import numpy as np
import napari
import colorplug
img = (np.arange(40 * 48) % 251).astype(np.uint8).reshape(40, 48)
viewer = napari.Viewer(show=False)
viewer.add_image(img)
out = colorplug.get(sys.argv[1], device="cpu").colorize(img)
print("result", out.shape, flush=True)
import torch.optim  # noqa: E402,F401 - imports torch._dynamo, hence triton
print("optim ok", flush=True)
viewer.close()
"""


@pytest.mark.slow  # a viewer in a subprocess
def test_the_api_after_a_viewer_exists_does_not_crash(tmp_path):
    """Without colorplug.gl_guard in colorplug.get this exits 139 (segfault)."""
    import subprocess
    import sys

    import qtpy

    env = dict(os.environ, OMP_NUM_THREADS="1", QT_API=qtpy.API)
    proc = subprocess.run([sys.executable, "-c", SCRIPT_FIRST, "cgan"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    assert "result (40, 48, 3)" in proc.stdout and "optim ok" in proc.stdout


# Issue 28 item 2: the viewer is closed while a run goes on and Qt keeps running (a script,
# Jupyter). PyQt aborts the process (exit 134) on an exception in a slot.
CLOSE_MID_RUN = """
import numpy as np
import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication
from napari_colorize._widget import ColorizeWidget
stack = (np.random.default_rng(0).random((40, 128, 128)) * 255).astype(np.uint8)
viewer = napari.Viewer(show=False)
layer = viewer.add_image(stack)
widget = ColorizeWidget(viewer)
viewer.window.add_dock_widget(widget)
widget.image.value = layer
widget.backend.value = "fusion"
widget.run()
app = QApplication.instance()
closed = []
def close_at_first_plane(stage):
    if stage[0] == "plane" and not closed:
        closed.append(1)
        viewer.close()
widget.worker.yielded.connect(close_at_first_plane)
def quit_when_done():
    if closed and widget.worker is None:
        app.quit()
timer = QTimer()
timer.timeout.connect(quit_when_done)
timer.start(100)
QTimer.singleShot(120000, app.quit)
app.exec()
print("clean exit", "closed" if closed else "never closed", flush=True)
"""


@pytest.mark.slow  # a viewer in a subprocess
def test_closing_the_viewer_mid_run_ends_quietly(tmp_path):
    import subprocess
    import sys

    import qtpy

    env = dict(os.environ, OMP_NUM_THREADS="1", QT_API=qtpy.API)
    proc = subprocess.run([sys.executable, "-c", CLOSE_MID_RUN], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    assert "clean exit closed" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_the_newest_result_is_on_top_and_keeps_the_transform(make_napari_viewer, qtbot,
                                                             errors):
    """Issue 28 items 3 and 6, in the worker thread as users run it."""
    viewer = make_napari_viewer()
    src = viewer.add_image(np.full((12, 16), 100, np.uint8), name="src", rotate=30,
                           scale=(2.0, 3.0), translate=(5.0, -4.0), shear=[0.2])
    viewer.add_points([[1.0, 1.0]], name="hints")
    widget = ColorizeWidget(viewer)
    widget.image.value = src
    for backend in ("fusion", "gray"):
        widget.backend.value = backend
        widget.result_layer = None
        widget.run()
        qtbot.waitUntil(lambda: widget.result_layer is not None, timeout=60000)
        qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=10000)
    assert [layer.name for layer in viewer.layers] == [
        "src", "src (colorized: fusion)", "src (colorized: gray)", "hints"]
    out = widget.result_layer
    for part in ("scale", "translate", "rotate", "shear"):
        np.testing.assert_allclose(getattr(out, part), getattr(src, part), err_msg=part)
    np.testing.assert_allclose(out.affine.affine_matrix, src.affine.affine_matrix)
    assert errors == []


# Paints each hint's colour exactly where it is (full resolution), nothing elsewhere.
HINT_PLUGIN = '''
import numpy as np, colorplug
from colorplug import color
from colorplug.pipeline import ChromaColorizer
INFO = colorplug.BackendInfo(name="hintmap", description="test: hint colours where hinted",
                             supports_hints=True)
class HintMap(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        out = []
        for lum in lightness:
            h, w = lum.shape
            ab = np.zeros((h, w, 2), np.float32)
            if isinstance(hints, list):
                yy, xx = np.mgrid[0:h, 0:w]
                for x, y, c, r in hints:
                    disc = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
                    ab[disc] = color.rgb_to_lab(np.asarray(c, float))[1:]
            else:
                arr = np.asarray(hints)
                on = arr[..., 3] > 0
                ab[on] = color.rgb_to_lab(arr[..., :3] / 255.0)[on][:, 1:]
            out.append(ab)
        return out
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("hintmap", lambda weights=None, device="auto", **o: HintMap(**o), INFO)
'''


def chroma(rgb):
    lab = color.rgb_to_lab(np.asarray(rgb) / 255.0)
    return np.hypot(lab[..., 1], lab[..., 2])


def test_reference_chooser_defaults_to_none_and_keeps_the_choice(make_napari_viewer, sync,
                                                                   errors, make_plugin):
    make_plugin("colorplug-refmean", {"refmean": "cp_test_refmean2"},
                {"cp_test_refmean2": REF_PLUGIN})
    viewer = make_napari_viewer()
    gray = viewer.add_image(np.full((20, 30), 120, np.uint8), name="gray")
    red = viewer.add_image(np.full((10, 10, 3), (200, 40, 40), np.uint8), name="red", rgb=True)
    widget = ColorizeWidget(viewer)
    widget.backend.value = "refmean"
    assert widget.reference.value is None  # never picked for the user
    viewer.add_image(np.full((10, 10, 3), (40, 40, 200), np.uint8), name="blue", rgb=True)
    assert widget.reference.value is None  # and not at the next insertion either
    widget.reference.value = red
    widget.image.value = gray
    widget.run()
    assert not errors and widget.result_layer is not None
    assert widget.reference.value is red  # the new (colour) result layer did not take over
    widget.reference.value = None
    viewer.add_image(np.full((10, 10, 3), (40, 200, 40), np.uint8), name="green", rgb=True)
    assert widget.reference.value is None


def test_points_hints_use_world_coordinates_per_plane(make_napari_viewer, sync, errors,
                                                      notices, make_plugin):
    make_plugin("colorplug-hintmap", {"hintmap": "cp_test_hintmap"},
                {"cp_test_hintmap": HINT_PLUGIN})
    viewer = make_napari_viewer()
    stack = viewer.add_image(np.full((3, 40, 60), 128, np.uint8), name="stack",
                             scale=(1, 2, 2), translate=(0, 10, 20), contrast_limits=(0, 255))
    # world (1, 30, 60) is data (1, 10, 20) of the stack; size 4 world units = radius 1 pixel
    points = viewer.add_points([[1, 30, 60]], name="marks", face_color="red", size=4)
    widget = ColorizeWidget(viewer)
    widget.backend.value = "hintmap"
    widget.image.value = stack
    widget.hints.value = points
    widget.run()
    assert not errors and not notices
    out = widget.result_layer.data
    assert out.shape == (3, 40, 60, 3)
    assert color.rgb_to_lab(out[1, 10, 20] / 255.0)[1] > 30  # red, at the transformed spot
    assert chroma(out[1, 10, 23]) < 2 and chroma(out[1, 30, 60 - 1]) < 2
    assert chroma(out[0]).max() < 2 and chroma(out[2]).max() < 2  # other planes untouched
    names = [layer.name for layer in viewer.layers]
    assert names.index("stack (colorized: hintmap)") < names.index("marks")  # points visible


def test_shapes_and_labels_are_hints_in_the_colours_shown(make_napari_viewer, sync, errors,
                                                          notices, make_plugin):
    make_plugin("colorplug-hintmap", {"hintmap": "cp_test_hintmap2"},
                {"cp_test_hintmap2": HINT_PLUGIN})
    viewer = make_napari_viewer()
    img = viewer.add_image(np.full((40, 60), 128, np.uint8), name="img", scale=(2, 2),
                           contrast_limits=(0, 255))
    shapes = viewer.add_shapes([np.array([[10, 20], [30, 60]])], shape_type="rectangle",
                               face_color="blue", name="painted")
    labels_data = np.zeros((40, 60), np.int32)
    labels_data[20:30, 40:50] = 3
    labels = viewer.add_labels(labels_data, name="labels", scale=(2, 2))
    widget = ColorizeWidget(viewer)
    widget.backend.value = "hintmap"
    assert shapes in widget.hints.choices and labels in widget.hints.choices
    widget.image.value = img
    widget.hints.value = shapes
    widget.run()
    out = widget.result_layer.data
    # the rectangle covers world rows 10..30, cols 20..60 = image rows 5..15, cols 10..30
    assert color.rgb_to_lab(out[10, 20] / 255.0)[2] < -30  # blue
    assert chroma(out[2, 20]) < 2 and chroma(out[10, 40]) < 2 and chroma(out[30, 50]) < 2
    widget.image.value = img
    widget.hints.value = labels
    widget.run()
    out = widget.result_layer.data
    shown = np.asarray(labels.colormap.map(np.array([3])))[0, :3]
    want = color.rgb_to_lab(shown)[1:]
    got = color.rgb_to_lab(out[25, 45] / 255.0)[1:]
    assert np.hypot(*(want - got)) < 8  # the label's colour as napari draws it
    assert chroma(out[5, 5]) < 2  # background label 0 is no hint
    assert not errors and not notices


def test_white_hints_warn(make_napari_viewer, sync, errors, notices, make_plugin):
    make_plugin("colorplug-hintmap", {"hintmap": "cp_test_hintmap3"},
                {"cp_test_hintmap3": HINT_PLUGIN})
    viewer = make_napari_viewer()
    viewer.add_image(np.full((20, 20), 128, np.uint8), name="img")
    points = viewer.add_points([[5, 5]], name="white", face_color="white")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "hintmap"
    widget.hints.value = points
    widget.run()
    assert any("white or gray" in n and "'white'" in n for n in notices)
    assert not errors and widget.result_layer is not None


COUNTED_PLUGIN = '''
import numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
BUILDS, REFS, BATCHES = [], [], []
INFO = colorplug.BackendInfo(name="counted", description="test: counts builds",
                             accepts_reference=True)
class Counted(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        REFS.append(id(reference))
        BATCHES.append(len(lightness))
        return [np.full((2, 2, 2), [20.0, 0.0], np.float32) for _ in lightness]
def build(weights=None, device="auto", **o):
    BUILDS.append(o)
    return Counted(**o)
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("counted", build, INFO)
'''


def test_model_kept_across_runs_and_reference_prepared_once(make_napari_viewer, sync, errors,
                                                            make_plugin):
    import sys

    make_plugin("colorplug-counted", {"counted": "cp_test_counted"},
                {"cp_test_counted": COUNTED_PLUGIN})
    viewer = make_napari_viewer()
    stack = viewer.add_image(np.full((6, 12, 14), 120, np.uint8), name="stack",
                             contrast_limits=(0, 255))
    red = np.zeros((10, 10, 3), np.uint8)
    red[...] = (200, 40, 40)
    viewer.add_image(red, name="red ref", rgb=True)
    widget = ColorizeWidget(viewer)
    widget.backend.value = "counted"
    widget.device.value = "cpu"
    widget.image.value = stack
    widget.reference.value = viewer.layers["red ref"]
    widget.run()
    plugin = sys.modules["cp_test_counted"]
    assert errors == [] and widget.result_layer.data.shape == (6, 12, 14, 3)
    assert len(set(plugin.REFS)) == 1  # one prepared reference for all six planes
    assert sum(plugin.BATCHES) == 6 and max(plugin.BATCHES) > 1  # planes batched
    stack.contrast_limits = (0, 200)  # a new display range: the same model
    widget.image.value = stack
    widget.run()
    widget.backend.value = "gray"
    widget.run()
    widget.backend.value = "counted"
    widget.run()
    assert errors == [] and len(plugin.BUILDS) == 1


def test_the_menu_entry_is_where_the_docs_say(make_napari_viewer):
    """Issue 28 item 8: the docs said Plugins ▸ colorplug ▸ Colorize; napari shows the
    entry the manifest gives. The docs quote what the Plugins menu holds."""
    from .conftest import REPO

    viewer = make_napari_viewer()

    def entries(menu, path):
        for action in menu.actions():
            if action.menu():
                yield from entries(action.menu(), path + [action.text()])
            elif action.text():
                yield " ▸ ".join(path + [action.text()])

    ours = [e for e in entries(viewer.window.plugins_menu, ["Plugins"]) if "colorplug" in e]
    assert ours == ["Plugins ▸ Colorize (colorplug)"]
    for doc in ("README.md", "docs/napari.md"):
        assert ours[0] in (REPO / doc).read_text(), doc


# ------------------------------------------------------------------ multiscale layers
def _textured(shape, seed=0, hi=255):
    """A smooth gradient with noise and a disc: something a model colours unevenly."""
    rng = np.random.default_rng(seed)
    h, w = shape[-2:]
    y, x = np.mgrid[0:h, 0:w]
    base = x / w * 0.6 + y / h * 0.3 + 0.1 * ((y - h / 2) ** 2 + (x - w / 3) ** 2 < (h / 4) ** 2)
    img = np.clip(base + rng.normal(0, 0.03, shape), 0, 1)
    return (img * hi).astype(np.uint8 if hi <= 255 else np.uint16)


def _halve(arr, rgb=False):
    """2x2 area mean over the plane's axes, the last two (a source pyramid's next level),
    or the two before the channels with ``rgb``."""
    if rgb:
        return np.moveaxis(_halve(np.moveaxis(arr, -1, 0)), 0, -1)
    h, w = arr.shape[-2] // 2 * 2, arr.shape[-1] // 2 * 2
    a = arr[..., :h, :w].astype(np.float64)
    return np.rint((a[..., 0::2, 0::2] + a[..., 1::2, 0::2] + a[..., 0::2, 1::2]
                    + a[..., 1::2, 1::2]) / 4).astype(arr.dtype)


def _run_threaded(widget, qtbot):
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120000)


def test_a_multiscale_layer_gives_a_multiscale_result(make_napari_viewer, qtbot, errors):
    """Issue 28 item 5: a pyramid (as OME-Zarr opens in napari) failed with a raw TypeError.
    Its full-resolution level is colorized (in the worker thread, as users run it) and the
    result is a pyramid of the same level shapes, on the source's transform."""
    import colorplug

    da = pytest.importorskip("dask.array")
    full = _textured((256, 384))
    levels = [da.from_array(full, chunks=(128, 128)), da.from_array(_halve(full))]
    viewer = make_napari_viewer()
    src = viewer.add_image(levels, multiscale=True, name="pyramid", contrast_limits=(20, 230),
                           scale=(0.5, 0.25), translate=(3.0, 4.0), rotate=15)
    widget = ColorizeWidget(viewer)
    widget.image.value = src
    widget.backend.value = "fusion"
    widget.device.value = "cpu"
    _run_threaded(widget, qtbot)
    assert errors == []
    out = widget.result_layer
    assert out is not None and out.multiscale and out.rgb
    assert out.name == "pyramid (colorized: fusion)"
    assert [tuple(level.shape) for level in out.data] == [(256, 384, 3), (128, 192, 3)]
    assert all(level.dtype == np.uint8 for level in out.data)
    expected = colorplug.get("fusion", device="cpu", working_size=widget.working_size.value,
                             intensity_range=(20, 230)).colorize(full)
    diff = np.abs(np.asarray(out.data[0]).astype(int) - expected.astype(int))
    assert diff.max() <= 1
    assert chroma(expected).mean() > 2  # fusion gave colour, so the comparison means something
    # the lower level is the colour result shrunk, not a separate colorization
    assert np.abs(np.asarray(out.data[1]).astype(int)
                  - _halve(expected, rgb=True).astype(int)).max() <= 1
    for part in ("scale", "translate", "rotate"):
        np.testing.assert_allclose(getattr(out, part), getattr(src, part), err_msg=part)
    np.testing.assert_allclose(out.affine.affine_matrix, src.affine.affine_matrix)
    assert [layer.name for layer in viewer.layers] == ["pyramid", "pyramid (colorized: fusion)"]


def test_a_multiscale_stack_is_colorized_plane_by_plane(make_napari_viewer, qtbot, errors):
    """A 2-plane multiscale stack (uint16, contrast limits set): one progress step per plane
    of each level, each plane of level 0 read once; level 0 equals colorizing each plane,
    level 1 is it shrunk."""
    import colorplug

    da = pytest.importorskip("dask.array")
    reads: list[tuple] = []

    def load(block, block_info=None):
        reads.append(block_info[0]["chunk-location"])
        return block

    full = np.stack([_textured((96, 128), seed=s, hi=4000) for s in (1, 2)])
    level0 = da.from_array(full, chunks=(1, 96, 128)).map_blocks(load, dtype=full.dtype)
    viewer = make_napari_viewer()
    src = viewer.add_image([level0, da.from_array(_halve(full))], multiscale=True,
                           name="zpyr", contrast_limits=(500, 3500))
    widget = ColorizeWidget(viewer)
    widget.image.value = src
    widget.backend.value = "gray"
    reads.clear()
    stages: list = []
    widget.run()
    widget.worker.yielded.connect(stages.append)
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60000)
    assert errors == []
    out = widget.result_layer
    assert out.multiscale
    assert [tuple(level.shape) for level in out.data] == [(2, 96, 128, 3), (2, 48, 64, 3)]
    gray = colorplug.get("gray", intensity_range=(500, 3500))
    for z in range(2):
        expected = gray.colorize(full[z])
        assert np.abs(np.asarray(out.data[0][z]).astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(np.asarray(out.data[1]).astype(int)
                  - _halve(np.asarray(out.data[0]), rgb=True).astype(int)).max() <= 1
    assert sorted(reads) == [(0, 0, 0), (1, 0, 0)]  # each plane once, never all at once
    assert [s for s in stages if s[0] == "plane"] == [("plane", n) for n in (1, 2, 3, 4)]
    assert src.contrast_limits == [500, 3500]


# A chroma that varies across the whole plane: tiles that each predicted their own colours
# would show seams; tiles that share one prediction give the whole plane's result.
GRADIENT_PLUGIN = '''
import numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
SEEN = []
INFO = colorplug.BackendInfo(name="gradient", description="test: a*b* ramps over the plane")
class Gradient(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        SEEN.extend(l.shape for l in lightness)
        y, x = np.mgrid[0:5, 0:7].astype(np.float32)
        return [np.stack([x * 8 - 24, y * 10 - 20], -1) for _ in lightness]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("gradient", lambda weights=None, device="auto", **o: Gradient(**o), INFO)
'''


class _Level:
    """A read-only array-like that records each read and refuses to be loaded whole."""

    def __init__(self, data, reads):
        self._data, self.reads = data, reads
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim

    def __getitem__(self, idx):
        part = self._data[idx]
        self.reads.append(part.shape)
        return part

    def __array__(self, *a, **k):
        raise AssertionError("the whole level was loaded")


def test_large_multiscale_planes_go_in_tiles_with_one_chroma(monkeypatch, make_plugin):
    """Planes over the whole-plane budget: read in tiles, never whole; chroma predicted once
    per plane from a shrunk lightness overview, recombined tile by tile with full-resolution
    lightness, so the result is the whole plane's (no seams) up to one level."""
    import sys

    import colorplug
    from napari_colorize import _core

    make_plugin("colorplug-gradient", {"gradient": "cp_test_gradient"},
                {"cp_test_gradient": GRADIENT_PLUGIN})
    monkeypatch.setattr(_core, "PLANE_PIXELS", 64 * 64)
    monkeypatch.setattr(_core, "TILE", 64)
    monkeypatch.setattr(_core, "OVERVIEW", 100)
    full = np.stack([_textured((150, 200), seed=s, hi=4000) for s in (3, 4)])
    reads: list = []
    levels = [_Level(full, reads), _Level(_halve(full), [])]
    colorizer = colorplug.get("gradient", intensity_range=(300, 3700))
    steps = list(_core.colorize_multiscale(levels, colorizer, rgb=False))
    total = _core.multiscale_steps([lv.shape for lv in levels], rgb=False)
    assert [s[0] for s in steps] == list(range(1, total + 1)) + [total]
    assert all(s[1] == total for s in steps)
    result = steps[-1][2]
    assert [r.shape for r in result] == [(2, 150, 200, 3), (2, 75, 100, 3)]
    assert max(r[-2] * r[-1] for r in reads) <= 64 * 64  # tiles, never a whole plane
    assert sys.modules["cp_test_gradient"].SEEN == [(75, 100), (75, 100)]  # one overview each
    for z in range(2):
        expected = colorizer.colorize(full[z])
        assert np.abs(result[0][z].astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(result[1].astype(int) - _halve(result[0], rgb=True).astype(int)).max() <= 1


def test_hints_on_a_multiscale_stack(make_napari_viewer, qtbot, errors, notices, make_plugin,
                                     monkeypatch):
    """Points hints reach the hinted plane of a multiscale stack (level-0 coordinates);
    on planes too large to go whole, hints are a clear notification, not a crash."""
    from napari_colorize import _core

    make_plugin("colorplug-hintmap", {"hintmap": "cp_test_hintmap4"},
                {"cp_test_hintmap4": HINT_PLUGIN})
    full = np.full((3, 40, 60), 128, np.uint8)
    viewer = make_napari_viewer()
    stack = viewer.add_image([full, full[:, ::2, ::2]], multiscale=True, name="mstack",
                             contrast_limits=(0, 255))
    points = viewer.add_points([[1, 10, 20]], name="marks", face_color="red", size=2)
    widget = ColorizeWidget(viewer)
    widget.backend.value = "hintmap"
    widget.image.value = stack
    widget.hints.value = points
    _run_threaded(widget, qtbot)
    assert not errors and not notices
    out = widget.result_layer
    assert out.multiscale and [tuple(lv.shape) for lv in out.data] == [(3, 40, 60, 3),
                                                                       (3, 20, 30, 3)]
    level0 = np.asarray(out.data[0])
    assert color.rgb_to_lab(level0[1, 10, 20] / 255.0)[1] > 30  # red where hinted
    assert chroma(level0[0]).max() < 2 and chroma(level0[2]).max() < 2
    monkeypatch.setattr(_core, "PLANE_PIXELS", 30 * 30)
    widget.result_layer = None
    widget.run()
    assert "clear Hints" in errors[-1] and widget.result_layer is None


def test_a_fluorescence_channel_gets_the_photo_model_note(make_napari_viewer, sync, errors,
                                                          notices):
    viewer = make_napari_viewer()
    data = (np.arange(32 * 32).reshape(32, 32) % 200).astype(np.uint8)
    viewer.add_image(data, name="GFP", colormap="green")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "autoencoder"
    widget.run()
    assert errors == [] and widget.result_layer is not None
    assert any("this is a fluorescence channel (the layer 'GFP' is shown in green)" in n
               and "Train on your images" in n for n in notices)
    notices.clear()
    viewer.layers["GFP"].colormap = "gray"  # a gray layer is not taken for fluorescence
    widget.run()
    assert not any("fluorescence" in n for n in notices)


def test_the_runtime_chooser_follows_the_backend_and_reaches_it(make_napari_viewer, sync, errors,
                                                                gray_image, tmp_path,
                                                                monkeypatch):
    """Runtime is shown for backends whose BackendInfo declares the option (fusion), with
    the values it takes; the choice reaches colorplug.get, and its result agrees with
    torch's within 1/255; a backend without it hides the chooser and runs with torch."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    monkeypatch.setenv("COLORPLUG_CACHE", str(tmp_path / "cache"))
    viewer = make_napari_viewer()
    viewer.add_image(gray_image, name="g", contrast_limits=(0, 255))
    widget = ColorizeWidget(viewer)
    widget.backend.value = "fusion"
    assert not widget.runtime.native.isHidden()
    assert list(widget.runtime.choices) == ["torch", "onnx", "openvino"]
    assert "runtime" not in widget._request()["options"]  # torch: the default, not sent
    widget.runtime.value = "onnx"
    assert widget._request()["options"]["runtime"] == "onnx"
    widget.run()
    assert errors == []
    exported = widget.result_layer.data
    widget.runtime.value = "torch"
    widget.run()
    assert errors == []
    assert np.abs(exported.astype(int) - widget.result_layer.data).max() <= 1
    assert color.rgb_to_lab(exported / 255.0)[..., 1:].std() > 1  # colour, not gray
    widget.runtime.value = "openvino"
    widget.backend.value = "autoencoder"
    assert widget.runtime.native.isHidden() and widget.runtime.value == "torch"
    assert "runtime" not in widget._request()["options"]
