"""The napari widget's Time axis: a (T, Y, X) layer colorized as a video, in a real viewer."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="napari extra not installed: pip install -e '.[napari]'")
pytest.importorskip("cv2", reason="video extra not installed: pip install -e '.[video]'")
if not os.environ.get("DISPLAY") and not shutil.which("Xvfb"):
    pytest.skip("napari's viewer needs a display: install xvfb (see README)", allow_module_level=True)

from colorplug import color  # noqa: E402
from napari_colorize._widget import ColorizeWidget  # noqa: E402

from .test_napari import SLOW_PLUGIN, errors, notices, sync  # noqa: E402,F401
from .test_video_temporal import FLICKER_PLUGIN, panned  # noqa: E402


def test_time_axis_runs_flow_along_the_first_axis(make_napari_viewer, sync, errors,  # noqa: F811
                                                  make_plugin):
    make_plugin("colorplug-flicker", {"flicker": "cp_test_flicker_napari"},
                {"cp_test_flicker_napari": FLICKER_PLUGIN})
    movie = np.stack(panned(10))
    viewer = make_napari_viewer()
    layer = viewer.add_image(movie, name="movie", contrast_limits=(0, 255))
    widget = ColorizeWidget(viewer)
    widget.backend.value = "flicker"
    assert widget.temporal.native.isHidden()  # shown only with Time axis ticked
    results = {}
    for time_axis in (False, True):
        widget.time_axis.value = time_axis
        widget.run()
        results[time_axis] = widget.result_layer.data
    assert not widget.temporal.native.isHidden() and widget.temporal.value == "flow"
    assert errors == []
    assert results[True].shape == movie.shape + (3,)
    assert "movie (colorized: flicker, flow)" in [l.name for l in viewer.layers]
    a = {k: color.rgb_to_lab(v / 255.0)[..., 1].mean(axis=(1, 2)) for k, v in results.items()}
    # planes independently: a* jumps by ~30 every frame; along time with flow: damped
    assert np.abs(np.diff(a[False])).mean() > 20
    assert np.abs(np.diff(a[True][1:])).mean() < np.abs(np.diff(a[False])).mean() / 3
    dl = color.lightness_from_rgb(results[True] / 255.0) - \
        color.lightness_from_gray(movie / 255.0)
    assert np.abs(dl).mean() < 0.6  # each frame keeps its lightness
    assert np.array_equal(layer.data, movie)  # the source layer is left as it was


def test_time_axis_on_a_2d_layer_is_a_notification(make_napari_viewer, sync, errors):  # noqa: F811
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((20, 20), np.uint8), name="flat")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "gray"
    widget.time_axis.value = True
    widget.run()
    assert widget.result_layer is None
    assert errors and "'flat' has no time axis" in errors[0]


def test_time_axis_run_can_be_cancelled(make_napari_viewer, qtbot, make_plugin, errors,  # noqa: F811
                                        notices):  # noqa: F811
    make_plugin("colorplug-slowpaint", {"slowpaint": "cp_test_slowpaint_video"},
                {"cp_test_slowpaint_video": SLOW_PLUGIN})
    viewer = make_napari_viewer()
    viewer.add_image(np.full((40, 16, 16), 100, np.uint8), name="long")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "slowpaint"
    widget.time_axis.value = True
    frames: list = []
    widget.run()
    widget.worker.yielded.connect(frames.append)
    qtbot.waitUntil(lambda: len(frames) >= 1, timeout=20000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=20000)
    assert len(frames) < 40 and widget.result_layer is None
    assert any("cancelled" in n for n in notices)
    assert [l.name for l in viewer.layers] == ["long"] and errors == []
