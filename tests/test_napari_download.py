"""napari asks before downloading weights (issue 31 item 1 in napari): a dialog naming the
size, licence and source; Yes downloads once (from a server the test starts on 127.0.0.1),
No downloads nothing and adds no layer."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

pytest.importorskip("napari", reason="napari extra not installed: pip install -e '.[napari]'")
if not os.environ.get("DISPLAY") and not shutil.which("Xvfb"):
    pytest.skip("napari's viewer needs a display: install xvfb (see README)", allow_module_level=True)

from napari_colorize._widget import ColorizeWidget  # noqa: E402

from .test_cache import cache_root, consent_plugin, reference, server, spec_for  # noqa: E402,F401


def answer_when_asked(qtbot, widget, yes: bool, asked: list) -> None:
    """Click Yes or No in the download question once it is open (a person's click)."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QMessageBox

    def click():
        box = widget.__dict__.get("download_question")
        if box is None:
            QTimer.singleShot(50, click)
            return
        asked.append(box.text())
        button = QMessageBox.StandardButton.Yes if yes else QMessageBox.StandardButton.No
        box.button(button).click()

    QTimer.singleShot(50, click)


@pytest.mark.parametrize("yes", [False, True])
def test_the_widget_asks_before_downloading(make_napari_viewer, qtbot, make_plugin, reference,
                                            server, cache_root, yes, monkeypatch):
    from napari.utils import notifications

    infos = []
    monkeypatch.setattr(notifications, "show_info", lambda msg: infos.append(str(msg)))
    spec = spec_for(server, reference[1], "tiny.safetensors", license="Apache-2.0")
    make_plugin("colorplug-tinyremote", {"tinyremote": "cp_test_tinyremote"},
                {"cp_test_tinyremote": consent_plugin(spec)})
    viewer = make_napari_viewer()
    viewer.add_image(np.full((16, 16), 90, np.uint8), name="gray")
    widget = ColorizeWidget(viewer)
    widget.backend.value = "tinyremote"
    asked: list[str] = []
    answer_when_asked(qtbot, widget, yes, asked)
    widget.run_button.clicked.emit()
    assert len(asked) == 1
    from colorplug.cache import describe_size

    for part in ("'tiny'", "Apache-2.0", spec.url, describe_size(spec.size)):
        assert part in asked[0], part
    if not yes:
        assert server.hits == [] and widget.worker is None
        assert any("not downloaded" in m for m in infos)
        return
    qtbot.waitUntil(lambda: widget.result_layer is not None, timeout=30000)
    assert len(server.hits) == 1
    # cached now: the next run asks nothing and fetches nothing
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=10000)
    widget.result_layer = None
    widget.run_button.clicked.emit()
    assert len(asked) == 1
    qtbot.waitUntil(lambda: widget.result_layer is not None, timeout=30000)
    assert len(server.hits) == 1
