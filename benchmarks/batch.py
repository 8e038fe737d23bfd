"""Folder throughput of the current code beside older checkouts, side by side in one run,
and the largest difference between their outputs.

    python benchmarks/batch.py --baseline before_batching=/path/to/af4a503 \
        --current-backend "fusion?weights=colorplug/weights/fusion_photos_w025_v1.safetensors" \
        --images 64 --side 256 --json benchmarks/results/batch.json

(``--baseline PATH`` alone is labelled "baseline"; the speedups are current / each.)

Both run `colorplug colorize FOLDER -o OUT -b fusion` in fresh processes, alternating, with
the same thread count; images/s covers decode, colorize, encode and write: it is
(N - F) / (time for N images - time for F images), F = 16 by default (two chunks, so the
short run overlaps I/O and network like the long one), so process start and model load
cancel. Images per CPU-second (user + system time of the process, same differencing) is
reported beside it: on a machine shared with other work it says how much each image
costs even when the wall clock says more about the neighbours.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_images(folder: Path, n: int, side: int) -> None:
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        field = gaussian_filter(rng.random((side, side)), 6) + 0.1 * rng.random((side, side))
        field = (field - field.min()) / np.ptp(field)
        Image.fromarray((field * 255).astype(np.uint8)).save(folder / f"img{i:03d}.png")


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(root: Path, src: Path, out: Path, backend: str, threads: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one CLI run."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": str(threads)}
    t, cpu = time.perf_counter(), _cpu_of_children()
    subprocess.run([sys.executable, "-m", "colorplug", "colorize", str(src), "-o", str(out),
                    "-b", backend, "--device", "cpu", "-q"], env=env, check=True, cwd=root)
    return time.perf_counter() - t, _cpu_of_children() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline", action="append", required=True,
                    help="[LABEL=]PATH of an older checkout; repeat for several")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--few", type=int, default=16, help="images of the short run")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--backend", default="fusion")
    ap.add_argument("--current-backend", default=None,
                    help="the backend spec for the current code when it must differ from the "
                         "baselines' (e.g. 'fusion?weights=OLD_DEFAULT' so both run the same "
                         "weights: older CLIs take no ?options)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from PIL import Image

    roots = {"current": Path(__file__).resolve().parents[1]}
    for spec in args.baseline:
        label, _, path = spec.rpartition("=")
        roots[label or "baseline"] = Path(path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_images(tmp / "many", args.images, args.side)
        make_images(tmp / "few", args.few, args.side)
        times = {k: [] for k in roots}
        per_cpu = {k: [] for k in roots}
        for _ in range(args.repeats):
            for label, root in roots.items():
                backend = args.current_backend if label == "current" and args.current_backend \
                    else args.backend
                few, few_cpu = run(root, tmp / "few", tmp / f"few_{label}", backend, args.threads)
                total, total_cpu = run(root, tmp / "many", tmp / f"out_{label}", backend,
                                       args.threads)
                times[label].append((args.images - args.few) / max(total - few, 1e-3))
                per_cpu[label].append((args.images - args.few) / max(total_cpu - few_cpu, 1e-3))
        diff = {label: max(int(np.abs(np.asarray(Image.open(tmp / "out_current" / p.name), int)
                                      - np.asarray(Image.open(tmp / f"out_{label}" / p.name),
                                                   int)).max())
                           for p in sorted((tmp / "out_current").glob("*.png")))
                for label in roots if label != "current"}
    rate = {k: float(np.median(v)) for k, v in times.items()}
    result = {"backend": args.backend, "current_backend": args.current_backend or args.backend,
              "command": "python benchmarks/batch.py " + " ".join(sys.argv[1:]),
              "images": args.images, "few": args.few, "side": args.side, "threads": args.threads,
              "images_per_s": rate, "runs": times,
              "speedup": {k: rate["current"] / rate[k] for k in roots if k != "current"},
              "pairwise_speedup": {k: [c / b for c, b in zip(times["current"], times[k])]
                                   for k in roots if k != "current"},
              "images_per_cpu_s": {k: float(np.median(v)) for k, v in per_cpu.items()},
              "cpu_runs": per_cpu, "load_average_after": os.getloadavg(),
              "max_abs_diff_8bit": diff}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
