"""GIMP plug-in overhead per backend, measured in real GIMP inside one batch script.

One GIMP session runs Filters ▸ Colors ▸ Colorize (colorplug) ``--reps`` + 1 times per
backend on the same image (the first run starts the warm worker and loads the model); the
same image is then colorized in-process with the API. Overhead of a later run = its GIMP
wall time minus the in-process colorize time (median of each). Target: <= 0.3 s.

    python benchmarks/gimp_bridge.py [--backends gray autoencoder fusion cgan exemplar]
        [--size 256] [--reps 3] [--runner ../shared/tools/gimp3/run_gimp3_batch.sh]
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
sys.path.insert(0, str(REPO))  # measure this checkout's plug-in and worker, as a pair

# Runs inside gimp-console (python-fu-eval): argv = [script, spec.json]
GIMP_SIDE = r'''
import json, time
spec = json.load(open(sys.argv[1]))
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(spec["input"]))
layer = image.get_layers()[0]
ref = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(spec["reference"]))
image.insert_layer(ref, None, len(image.get_layers()))
ref.set_visible(False)
proc = Gimp.get_pdb().lookup_procedure("plug-in-colorplug-colorize")
times = {}
for backend in spec["backends"]:
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    config.set_property("backend", backend)
    config.set_property("device", "cpu")
    config.set_property("reference", ref)
    config.set_property("replace", False)
    runs = []
    for _ in range(spec["reps"] + 1):
        t0 = time.monotonic()
        result = proc.run(config)
        runs.append(time.monotonic() - t0)
        status = result.index(0)
        if status != Gimp.PDBStatusType.SUCCESS:
            raise RuntimeError("%s: %s" % (backend, Gimp.get_pdb().get_last_error()))
        top = image.get_layers()[0]
        if top is not layer and top.get_name().startswith(layer.get_name() + " (colorized"):
            image.remove_layer(top)
    times[backend] = runs
json.dump(times, open(spec["out"], "w"))
'''


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--backends", nargs="+",
                   default=["gray", "autoencoder", "fusion", "cgan", "exemplar"])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--runner", default=str(REPO.parent / "shared/tools/gimp3/run_gimp3_batch.sh"))
    p.add_argument("--out", default=None)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    runner = Path(args.runner)
    if not (runner.exists() and os.geteuid() == 0):
        sys.exit(f"needs the GIMP 3 runner {runner} and root")
    from PIL import Image

    import colorplug
    from colorplug import gimp_install

    n = args.size
    y, x = np.mgrid[0:n, 0:n]
    gray = ((x * 200 // n + y * 55 // n) % 256).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, -1)  # RGB image: reference backends need one
    ref = np.zeros((64, 64, 3), np.uint8)
    ref[...] = (40, 90, 220)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        plugin = gimp_install.install(tmp / "gimpdir")
        Image.fromarray(rgb).save(tmp / "in.png")
        Image.fromarray(ref).save(tmp / "ref.png")
        (tmp / "gimp_side.py").write_text(GIMP_SIDE)
        spec = {"input": str(tmp / "in.png"), "reference": str(tmp / "ref.png"),
                "backends": args.backends, "reps": args.reps, "out": str(tmp / "times.json")}
        (tmp / "spec.json").write_text(json.dumps(spec))
        python = f"/usr/bin/env PYTHONPATH={REPO} OMP_NUM_THREADS=1 {sys.executable}"
        t0 = time.perf_counter()
        proc = subprocess.run([str(runner), "batch", "--host-escape", "--plugin", str(plugin),
                               "--bind", str(tmp), "--env", f"TMPDIR={tmp}",
                               "--env", f"COLORPLUG_PYTHON=host-run {python}",
                               "--timeout", "1200", str(tmp / "gimp_side.py"),
                               str(tmp / "spec.json")], capture_output=True, text=True)
        session = time.perf_counter() - t0
        if not (tmp / "times.json").exists():
            sys.exit(f"GIMP run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        gimp_times = json.loads((tmp / "times.json").read_text())
    res = {"image": f"{n}x{n} gray in an RGB image", "reps": args.reps,
           "gimp_session_s": round(session, 2), "backends": {}}
    print(f"{'backend':12} {'1st GIMP run':>13} {'later GIMP':>11} {'in-process':>11} "
          f"{'overhead':>9}")
    for backend in args.backends:
        c = colorplug.get(backend, device="cpu", intensity_range="dtype")
        c.colorize(rgb, reference=ref if c.info.accepts_reference else None)  # warm-up
        inproc = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            c.colorize(rgb, reference=ref if c.info.accepts_reference else None)
            inproc.append(time.perf_counter() - t0)
        runs = gimp_times[backend]
        later, api = statistics.median(runs[1:]), statistics.median(inproc)
        res["backends"][backend] = {"first_gimp_run_s": round(runs[0], 3),
                                    "later_gimp_run_s": round(later, 3),
                                    "in_process_colorize_s": round(api, 3),
                                    "overhead_s": round(later - api, 3)}
        print(f"{backend:12} {runs[0]:13.2f} {later:11.3f} {api:11.3f} {later - api:9.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
