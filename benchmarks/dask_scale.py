"""Folder throughput on a dask.distributed cluster with 1 and 2 workers, and the per-worker
rate, so a real cluster's throughput can be estimated (files/s ~ workers x per-worker rate
while storage keeps up).

    python benchmarks/dask_scale.py --images 48 --side 256 --backend fusion \
        --json benchmarks/results/dask_scale.json

Each worker is one process with one thread (OMP_NUM_THREADS=1). Both cluster sizes run
`colorplug colorize FOLDER -o OUT --scheduler tcp://...` (the CLI's code path), alternating,
after a warm-up run that loads the model once per worker; the in-process run without
--scheduler (one thread) is timed beside them as the reference. files/s is
(N - 8) / (t(N files) - t(8 files)), so the driver's fixed costs (building the backend to
check it, connecting to the scheduler, planning) cancel and the rate is the cluster's.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch import make_images  # noqa: E402  (benchmarks/batch.py)


def colorize(src: Path, out: Path, backend: str, scheduler: str | None) -> float:
    from colorplug.cli import main as cli

    shutil.rmtree(out, ignore_errors=True)
    extra = ["--scheduler", scheduler] if scheduler else []
    t = time.perf_counter()
    code = cli(["colorize", str(src), "-o", str(out), "-b", backend, "--device", "cpu", "-q",
                *extra])
    elapsed = time.perf_counter() - t
    if code != 0:
        raise SystemExit(f"colorize failed ({code})")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--backend", default="fusion")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch
    from distributed import Client, LocalCluster

    torch.set_num_threads(1)
    rates: dict[str, list[float]] = {"in-process (no scheduler)": [], "1 worker": [],
                                     "2 workers": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_images(tmp / "many", args.images, args.side)
        make_images(tmp / "warm", 4, args.side)
        make_images(tmp / "few", 8, args.side)
        clusters = {}
        try:
            for n in (1, 2):
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
                with Client(cluster) as client:
                    client.run(lambda: os.environ.update(OMP_NUM_THREADS="1"))
                clusters[f"{n} worker" + ("s" if n > 1 else "")] = cluster
            for label, cluster in clusters.items():  # load the model on every worker
                colorize(tmp / "warm", tmp / "warm_out", args.backend, cluster.scheduler_address)
            colorize(tmp / "warm", tmp / "warm_out", args.backend, None)
            runs = {"in-process (no scheduler)": None,
                    **{k: c.scheduler_address for k, c in clusters.items()}}
            for _ in range(args.repeats):
                for label, address in runs.items():
                    few = colorize(tmp / "few", tmp / "out", args.backend, address)
                    many = colorize(tmp / "many", tmp / "out", args.backend, address)
                    rates[label].append((args.images - 8) / max(many - few, 1e-3))
        finally:
            for cluster in clusters.values():
                cluster.close()
    median = {k: statistics.median(v) for k, v in rates.items()}
    result = {
        "backend": args.backend, "images": args.images, "side": args.side,
        "repeats": args.repeats, "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "files_per_s": median, "runs": rates,
        "per_worker_files_per_s": {"1 worker": median["1 worker"],
                                   "2 workers": median["2 workers"] / 2},
        "scaling_2_over_1": median["2 workers"] / median["1 worker"],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
