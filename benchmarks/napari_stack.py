"""napari widget on a 512x512x50 uint16 stack: wall time per backend and UI responsiveness.

    xvfb-run -a python benchmarks/napari_stack.py [--backends gray autoencoder transfer]

Runs the Colorize widget threaded (as a user does) while a 10 ms QTimer records the gaps
between Qt event-loop ticks; the longest gap is how long the viewer could not respond.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backends", nargs="+", default=["gray", "autoencoder"])
    p.add_argument("--planes", type=int, default=50)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import napari
    from qtpy.QtCore import QTimer

    from napari_colorize._widget import ColorizeWidget

    viewer = napari.Viewer(show=True)
    app = napari.qt.get_qapp()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512]
    base = (np.sin(x / 40) * np.cos(y / 55) * 1500 + 2500).astype(np.float32)
    stack = (base[None] + rng.normal(0, 150, (args.planes, 512, 512))).clip(0, 65535).astype(np.uint16)
    layer = viewer.add_image(stack, name="stack", contrast_limits=(800, 4200))
    reference = (np.stack([x % 256, y % 256, (x + y) % 256], -1)).astype(np.uint8)
    viewer.add_image(reference, name="reference", rgb=True)
    widget = ColorizeWidget(viewer)
    results = {}
    for backend in args.backends:
        widget.image.value = layer
        widget.backend.value = backend
        widget.device.value = "cpu"
        ticks: list[float] = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        timer.start(10)
        t0 = time.perf_counter()
        widget.run()
        while widget.result_layer is None or not widget.run_button.enabled:
            app.processEvents()
            time.sleep(0.002)
            if time.perf_counter() - t0 > 1800:
                raise TimeoutError(backend)
        wall = time.perf_counter() - t0
        timer.stop()
        gaps = np.diff(ticks) if len(ticks) > 1 else np.array([0.0])
        results[backend] = {"wall_s": wall, "per_plane_s": wall / args.planes,
                            "longest_tick_gap_ms": float(gaps.max() * 1000),
                            "median_tick_gap_ms": float(np.median(gaps) * 1000)}
        print(f"{backend}: {wall:.1f} s for {args.planes} planes of 512x512 uint16 "
              f"({wall / args.planes:.3f} s/plane); longest Qt tick gap "
              f"{gaps.max() * 1000:.0f} ms (median {np.median(gaps) * 1000:.0f} ms)")
        viewer.layers.remove(widget.result_layer)
        widget.result_layer = None
    viewer.close()
    if args.out:
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as fh:
            json.dump({"planes": args.planes, "cpu_count": os.cpu_count(), **results}, fh, indent=2)


if __name__ == "__main__":
    main()
