"""napari's "Train on your images" section (issue 32): a real viewer, the real worker thread.

The user's weights folder is platformdirs' user data folder (XDG_DATA_HOME moves it, as for
any user); the autoencoder keeps each run to seconds.
"""
from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("napari", reason="napari extra not installed: pip install -e '.[napari]'")
if not os.environ.get("DISPLAY") and not shutil.which("Xvfb"):
    pytest.skip("napari's viewer needs a display: install xvfb (see README)", allow_module_level=True)

from napari_colorize._widget import ColorizeWidget  # noqa: E402


def colour_photo(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    light = np.clip(0.6 * xx + 0.3 * yy + 0.1 * rng.uniform(), 0, 1)
    rgb = np.stack([light, 0.4 * light, 1 - light], -1)
    return (rgb * 255).astype(np.uint8)


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "colorplug" / "weights"


def viewer_with_photos(make_napari_viewer, n: int = 5):
    viewer = make_napari_viewer()
    layers = [viewer.add_image(colour_photo(i), rgb=True, name=f"photo {i}") for i in range(n)]
    gray = viewer.add_image(colour_photo(99).mean(-1).astype(np.uint8), name="gray")
    return viewer, layers, gray


def test_train_in_the_widget_then_colorize_with_the_new_weights(make_napari_viewer, qtbot,
                                                                user_data):
    import colorplug

    viewer, layers, gray = viewer_with_photos(make_napari_viewer)
    widget = ColorizeWidget(viewer)
    widget.backend.value = "autoencoder"
    section = widget.train_section
    section.layers.value = layers
    section.weights_name.value = "napari-mine"
    section.minutes.value = 0.1
    assert widget.weights.value == "default"
    section.train_button.clicked.emit()
    assert section.worker is not None and not section.train_button.enabled
    # the event loop keeps running while training: records arrive on the main thread
    qtbot.waitUntil(lambda: len(section.records) >= 1, timeout=60000)
    assert section.records[0]["epoch"] == 0 and "val_psnr" in section.records[0]
    qtbot.waitUntil(lambda: section.result is not None, timeout=120000)
    qtbot.waitUntil(lambda: section.train_button.enabled, timeout=10000)
    assert (user_data / "napari-mine.safetensors").is_file()
    card = json.loads((user_data / "napari-mine.json").read_text())
    assert card["data"]["count"] == 5 and card["base"]["weights"] == "default"
    # the new weights are chosen, and a before/after of a val image was added
    assert widget.weights.value == "napari-mine"
    names = [layer.name for layer in viewer.layers]
    assert any(n.endswith("before (default)") for n in names)
    assert any(n.endswith("after (napari-mine)") for n in names)
    # the next Run uses them
    widget.image.value = gray
    gray.contrast_limits = (0, 255)  # the display range is the dtype's: as the API reads it
    widget.run_button.clicked.emit()
    qtbot.waitUntil(lambda: widget.result_layer is not None, timeout=60000)
    want = colorplug.get("autoencoder", weights="napari-mine").colorize(gray.data)
    assert np.array_equal(np.asarray(widget.result_layer.data), want)
    default = colorplug.get("autoencoder").colorize(gray.data)
    assert not np.array_equal(want, default)


def test_stop_keeps_the_best_so_far(make_napari_viewer, qtbot, user_data):
    viewer, layers, _gray = viewer_with_photos(make_napari_viewer)
    widget = ColorizeWidget(viewer)
    widget.backend.value = "autoencoder"
    section = widget.train_section
    section.layers.value = layers
    section.weights_name.value = "stopped"
    section.minutes.value = 30
    section.train_button.clicked.emit()
    qtbot.waitUntil(lambda: len(section.records) >= 2, timeout=120000)
    t0 = time.time()
    section.cancel_button.clicked.emit()
    qtbot.waitUntil(lambda: section.result is not None, timeout=60000)
    assert time.time() - t0 < 30  # within a step and one validation, not the 30 minutes
    card = json.loads((user_data / "stopped.json").read_text())
    assert card["training"]["interrupted"] is True
    assert widget.weights.value == "stopped"


def test_train_refuses_a_backend_that_cannot_be_trained_and_a_missing_name(
        make_napari_viewer, user_data, monkeypatch):
    from napari.utils import notifications

    shown = []
    monkeypatch.setattr(notifications, "show_error", shown.append)
    viewer, layers, _gray = viewer_with_photos(make_napari_viewer, n=2)
    widget = ColorizeWidget(viewer)
    section = widget.train_section
    section.layers.value = layers
    widget.backend.value = "gray"
    section.weights_name.value = "x"
    section.train_button.clicked.emit()
    widget.backend.value = "autoencoder"
    section.weights_name.value = ""
    section.train_button.clicked.emit()
    assert len(shown) == 2 and section.worker is None
    assert "cannot be trained here" in shown[0] and "Name" in shown[1]
