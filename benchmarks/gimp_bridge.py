"""GIMP plug-in cost for a 1 MP image: the bridge subprocess vs colorplug in-process, and
a whole GIMP batch run (GIMP start + plug-in + bridge) when a GIMP 3 runner is available.

    python benchmarks/gimp_bridge.py [--runner ../shared/tools/gimp3/run_gimp3_batch.sh]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def bridge_call(tmp: Path, gray: np.ndarray, backend: str) -> float:
    src, dst = tmp / "in.raw", tmp / "out.raw"
    gray.tofile(src)
    req = {"command": "colorize", "backend": backend, "device": "cpu",
           "input": {"path": str(src), "width": gray.shape[1], "height": gray.shape[0],
                     "channels": 1, "depth": 8}, "output": {"path": str(dst)}}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "colorplug.gimp_bridge"], input=json.dumps(req),
                         capture_output=True, text=True, check=True).stdout
    assert "result" in out, out
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", default="autoencoder")
    p.add_argument("--runner", default=str(REPO.parent / "shared/tools/gimp3/run_gimp3_batch.sh"))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import colorplug

    gray = np.random.default_rng(0).integers(0, 256, (1024, 1024), dtype=np.uint8)
    res: dict = {"backend": args.backend, "image": "1024x1024 gray uint8"}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bridge = [bridge_call(tmp, gray, args.backend) for _ in range(args.reps)]
        t0 = time.perf_counter()
        c = colorplug.get(args.backend, device="cpu")
        build = time.perf_counter() - t0
        inproc = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            c.colorize(gray)
            inproc.append(time.perf_counter() - t0)
        res["bridge_call_s"] = statistics.median(bridge)
        res["in_process_colorize_s"] = statistics.median(inproc)
        res["in_process_build_s"] = build
        res["bridge_overhead_s"] = res["bridge_call_s"] - res["in_process_colorize_s"]
        print(f"bridge subprocess, 1 MP: {res['bridge_call_s']:.2f} s; in-process colorize "
              f"{res['in_process_colorize_s']:.2f} s (+ {build:.2f} s to build the backend); "
              f"bridge overhead {res['bridge_overhead_s']:.2f} s")
        runner = Path(args.runner)
        if runner.exists() and os.geteuid() == 0:
            from PIL import Image

            from colorplug import gimp_install

            plugin = gimp_install.install(tmp / "gimpdir")
            Image.fromarray(gray).save(tmp / "in.png")
            (tmp / "out").mkdir()
            spec = {"input": str(tmp / "in.png"), "out": str(tmp / "out"),
                    "args": {"backend": args.backend, "device": "cpu"}}
            (tmp / "spec.json").write_text(json.dumps(spec))
            runs = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                subprocess.run([str(runner), "batch", "--host-escape", "--plugin", str(plugin),
                                "--bind", str(tmp), "--env",
                                f"COLORPLUG_PYTHON=host-run {sys.executable}",
                                str(REPO / "tests/gimp/scenario.py"), str(tmp / "spec.json")],
                               check=True, capture_output=True)
                runs.append(time.perf_counter() - t0)
            res["gimp_batch_run_s"] = statistics.median(runs)
            print(f"whole GIMP batch run (start GIMP, load, plug-in, bridge, read back), 1 MP: "
                  f"{res['gimp_batch_run_s']:.2f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
