"""colorplug-zoo: CPU time to colorize a 1 MP (1024 x 1024) image with each published
network, at 1 and 2 torch threads, and the peak memory of a process doing it.

    python benchmarks/zoo.py [--reps 2] [--out benchmarks/results/zoo_cpu.json]

Random weights written in each published layout (speed does not depend on the values);
each model runs in its own subprocess so its peak RSS (loading the file included) is its
own. ddcolor, ddcolor-artistic and ddcolor-paper share the DDColor-L network: measured
once. Needs `pip install -e plugins/colorplug-zoo`. Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

from _common import save_json, timed

MODELS = {"eccv16": "eccv16", "siggraph17": "siggraph17", "ddcolor-tiny": "ddcolor-tiny",
          "ddcolor (DDColor-L)": "ddcolor"}


def write_random_weights(backend: str, path: str) -> None:
    import torch

    from colorplug_zoo import catalog, ddcolor, eccv16, siggraph17

    arch = catalog.for_backend(backend).architecture
    if arch.startswith("ddcolor"):
        net = ddcolor.with_spectral_norm(ddcolor.build(arch.split("-")[1]))
        torch.save({"params": net.state_dict()}, path)
    else:
        torch.save({"eccv16": eccv16, "siggraph17": siggraph17}[arch].build().state_dict(), path)


def one(backend: str, threads: int, reps: int, folder: str) -> dict:
    import numpy as np
    import torch

    import colorplug

    torch.set_num_threads(threads)
    path = os.path.join(folder, backend + ".pth")
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c = colorplug.get(backend, weights=path, device="cpu")
    gray = (np.add.outer(np.arange(1024), np.arange(1024)) % 256).astype(np.uint8)
    t = timed(lambda: c.colorize(gray), reps)
    return {"seconds_1mp": t, "threads": threads,
            "weights_file_mb": os.path.getsize(path) / 2**20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_model_mb": base_rss / 1024}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--out", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    p.add_argument("--write", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.write:  # in its own process, so the measured processes' peak RSS excludes it
        write_random_weights(args.write, os.path.join(args.folder, args.write + ".pth"))
        return
    if args.one:
        print(json.dumps(one(args.one, args.threads, args.reps, args.folder)))
        return
    results: dict = {"cpu_count": os.cpu_count(), "image": "1024x1024 uint8 gray", "models": {}}
    with tempfile.TemporaryDirectory() as folder:
        for label, backend in MODELS.items():
            subprocess.run([sys.executable, __file__, "--write", backend, "--folder", folder],
                           check=True)
            for threads in (1, 2):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", backend, "--threads", str(threads),
                     "--reps", str(args.reps), "--folder", folder],
                    capture_output=True, text=True, check=True,
                    env={**os.environ, "OMP_NUM_THREADS": str(threads)})
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results["models"].setdefault(label, {})[f"{threads}_thread"] = r
                print(f"{label:22s} {threads} thread(s): {r['seconds_1mp']['median']:7.2f} s "
                      f"per 1 MP image, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    save_json(args.out, results)


if __name__ == "__main__":
    main()
