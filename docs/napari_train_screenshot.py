"""Open napari with colour tiles of scikit-image's immunohistochemistry slide, train
`fusion` on them in the Colorize widget's Train section, save a screenshot.

    XDG_DATA_HOME=$(mktemp -d) xvfb-run -a python docs/napari_train_screenshot.py \\
        docs/img/napari_train.png

The screenshot in docs/training.md is made by this script (the real worker thread; the
before/after layers are the widget's own).
"""
from __future__ import annotations

import sys
import time


def main(out: str, minutes: float = 1.0) -> None:
    import napari
    import skimage.data

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 800)
    slide = skimage.data.immunohistochemistry()
    layers = [viewer.add_image(slide[y:y + 224, x:x + 224], rgb=True, name=f"tile {i}")
              for i, (y, x) in enumerate((y, x) for y in (0, 144, 288) for x in (0, 144))]
    _, widget = viewer.window.add_plugin_dock_widget("colorplug", "Colorize")
    widget.backend.value = "fusion"
    widget.device.value = "cpu"
    section = widget.train_section
    section.layers.value = layers
    section.weights_name.value = "ihc-demo"
    section.minutes.value = minutes
    section.train()
    app = napari.qt.get_qapp()
    deadline = time.time() + minutes * 60 + 300
    while section.result is None and time.time() < deadline:
        app.processEvents()
        time.sleep(0.05)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    for layer in layers:
        layer.visible = False
    viewer.grid.enabled = True
    viewer.reset_view()
    app.processEvents()
    viewer.screenshot(out, canvas_only=False)
    viewer.close()
    print(f"saved {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img/napari_train.png")
