"""Open napari, load the colorplug sample, run the Colorize widget, save a screenshot.

    xvfb-run -a python docs/napari_screenshot.py docs/img/napari.png

The screenshot in the docs (docs/napari.md) is made by this script.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("COLORPLUG_NAPARI_SYNC", "1")


def main(out: str) -> None:
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1200, 700)
    viewer.open_sample("colorplug", "astronaut")
    _, widget = viewer.window.add_plugin_dock_widget("colorplug", "Colorize")
    widget.image.value = viewer.layers["astronaut (gray)"]
    widget.backend.value = "autoencoder"
    widget.device.value = "cpu"
    widget.run()
    viewer.layers["astronaut (colour reference)"].visible = False
    viewer.layers.selection.active = widget.result_layer
    viewer.grid.enabled = False
    viewer.reset_view()
    napari.qt.get_qapp().processEvents()
    viewer.screenshot(out, canvas_only=False)
    viewer.close()
    print(f"saved {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/img/napari.png")
