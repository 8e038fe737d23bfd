"""runtime="torch" vs "onnx" vs "openvino" (colorplug.runtimes) side by side, in one run:
DDColor-T (ddcolor-tiny) and the built-in default `fusion` on a 512 x 512 image, on the
same weights, at the same thread count.

    python benchmarks/runtime_speed.py [--threads 2 1] [--reps 5] \
        [--out benchmarks/results/runtime_speed_cpu.json]

Memory: each (model, runtime) in its own subprocess (build, one colorize), so its peak RSS
(ru_maxrss: Python, torch, the weights, the runtime's session) is its own. Time: per model
and thread count, one subprocess builds the three side by side, warms each up, then times
them in turns, the order rotating each round, so load from elsewhere on a shared machine
falls on all three alike; reported: the median of `reps` calls of ``colorize`` (what a user
waits for: pre-processing, the network, recombination at full resolution) and of the
network alone on the input it gets. The export is made
once before the timed processes (its time is reported as ``export_seconds``), so they open
the cached file as a user's second run does. max |difference| is taken on the uint8 RGB
output (what users get) against torch's, and on the network's own float output.

``--threads 2 1`` measures at each thread count in turn: on a machine where another job
holds a core, 2-thread timings (torch's OpenMP threads wait for each other) vary far more
than 1-thread ones, so both are kept.

DDColor-T: random weights with the colour embeddings scaled to a photo's a*b* range, as the
zoo's tests make them (speed does not depend on the values; the published file is 220 MB
and is not downloaded here). fusion: the shipped default weights. Needs
`pip install -e ".[onnx,openvino]"` and `pip install -e plugins/colorplug-zoo`. Not a test:
the numbers depend on the machine and on what else runs on it (the JSON records the load).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time

from _common import save_json

#: label -> (backend, options, what the network sees)
MODELS = {
    "DDColor-T (ddcolor-tiny)": ("ddcolor-tiny", {}, "512x512 (input_size, the default)"),
    "fusion (default)": ("fusion", {}, "256 px longest side + 16 px border (working_size, "
                                       "the default)"),
    "fusion working_size=512": ("fusion", {"working_size": 512},
                                "512 px longest side + 16 px border"),
}
RUNTIMES = ("torch", "onnx", "openvino")
SIDE = 512


def tag(label: str, runtime: str) -> str:
    """File-name stem of one (model, runtime)'s saved outputs."""
    return f"model{list(MODELS).index(label)}-{runtime}"


def write_ddcolor_tiny(path: str) -> None:
    """Random DDColor-T weights, colour embeddings scaled so a*b* have a photo's spread."""
    import torch

    from colorplug_zoo import ddcolor

    torch.manual_seed(0)
    net = ddcolor.build("tiny").eval()
    with torch.no_grad():
        emb = net.decoder.color_decoder.color_embed.layers[-1]
        k = 25 / float(net(torch.rand(1, 3, 64, 64)).std())
        emb.weight.mul_(k)
        emb.bias.mul_(k)
    torch.save(net.state_dict(), path)


def image():
    """The bundled gray sample (the astronaut) resized to 512 x 512: a photo's structure,
    so chroma varies across it."""
    import numpy as np
    from PIL import Image

    import colorplug

    return np.asarray(Image.fromarray(colorplug.sample()).resize((SIDE, SIDE),
                                                                 Image.BICUBIC))


def build(label: str, runtime: str, folder: str):
    import colorplug

    backend, options, _ = MODELS[label]
    weights = {"weights": os.path.join(folder, "ddcolor_tiny.pth")} \
        if backend == "ddcolor-tiny" else {}
    return colorplug.get(backend, device="cpu", runtime=runtime, **weights, **options)


def network_call(c, gray):
    """The network alone on the input `c` gives it for `gray`: a callable."""
    import numpy as np
    import torch

    from colorplug import color

    lum = color.lightness_from_gray(gray / 255.0).astype(np.float32)
    if c.info.name == "fusion":
        from colorplug.backends.fusion.colorizer import reflect_padded
        from colorplug.image import resize_map, working_shape

        g = c.model.cfg.global_size
        lh, lw = working_shape(*lum.shape, c.working_size, multiple=8)
        local = reflect_padded(torch.from_numpy(resize_map(lum, lw, lh) / 100.0)[None, None])
        glob = torch.from_numpy(resize_map(lum, g, g) / 100.0)[None, None]
        if c.exported is not None:
            return lambda: c.exported(local.numpy(), glob.numpy())[0]
        model = c.model

        def run_torch():
            with torch.inference_mode():
                return model(local, global_vector=model.global_features(glob)[0])[0].numpy()
        return run_torch
    s = c.input_size
    rgb = torch.from_numpy(np.ascontiguousarray(np.broadcast_to(
        color.gray_from_lightness(lum)[None, None], (1, 3) + lum.shape), dtype=np.float32))
    rgb = torch.nn.functional.interpolate(rgb, size=(s, s), mode="bilinear",
                                          align_corners=False)
    if c.exported is not None:
        return lambda: c.exported(rgb.numpy())[0]
    net = c.net

    def run_torch_dd():
        with torch.inference_mode():
            return net(rgb).numpy()
    return run_torch_dd


def memory(label: str, runtime: str, threads: int, folder: str) -> dict:
    """In this process: build, colorize once and run the network once (outputs saved for
    the comparison); the process's peak RSS."""
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    c = build(label, runtime, folder)
    built = time.perf_counter() - t0
    gray = image()
    stem = os.path.join(folder, tag(label, runtime))
    np.save(stem + ".rgb.npy", c.colorize(gray))
    np.save(stem + ".net.npy", np.asarray(network_call(c, gray)()))
    return {"build_seconds": built, "threads": threads,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_model_mb": base / 1024}


def interleaved(label: str, threads: int, reps: int, folder: str) -> dict:
    """In this process: the three runtimes built side by side, each warmed up, then timed
    in turns (the order rotating each round), so load from elsewhere falls on all alike."""
    import statistics

    import torch

    torch.set_num_threads(threads)
    gray = image()
    colorizers = {rt: build(label, rt, folder) for rt in RUNTIMES}
    calls = {}
    for rt, c in colorizers.items():
        net = network_call(c, gray)
        c.colorize(gray)  # warm-up
        net()
        calls[rt] = {"colorize": (lambda c=c: c.colorize(gray)), "network": net}
    times: dict = {rt: {"colorize": [], "network": []} for rt in RUNTIMES}
    for i in range(reps):
        for rt in RUNTIMES[i % 3:] + RUNTIMES[:i % 3]:
            for what, fn in calls[rt].items():
                t0 = time.perf_counter()
                fn()
                times[rt][what].append(time.perf_counter() - t0)
    return {rt: {f"{what}_seconds": {"median": statistics.median(ts), "min": min(ts),
                                     "reps": reps}
                 for what, ts in per.items()} | {"torch_threads": threads}
            for rt, per in times.items()}


def export_once(label: str, folder: str) -> float:
    """Build the onnx runtime once (exports into the cache); its seconds."""
    t0 = time.perf_counter()
    build(label, "onnx", folder)
    return time.perf_counter() - t0


def versions() -> dict:
    import numpy
    import onnx
    import onnxruntime
    import openvino
    import torch

    import colorplug

    return {"colorplug": colorplug.__version__, "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__,
            "onnx": onnx.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def openvino_default_precision() -> str:
    import openvino as ov

    return str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))


def compare(label: str, runs: dict, folder: str, threads: int) -> None:
    """Add max |difference| and speed-up against torch to each runtime's record."""
    import numpy as np

    ref = runs["torch"]
    rgb0, net0 = (np.load(os.path.join(folder, tag(label, "torch") + suffix))
                  for suffix in (".rgb.npy", ".net.npy"))
    for runtime, r in runs.items():
        rgb, net = (np.load(os.path.join(folder, tag(label, runtime) + suffix))
                    for suffix in (".rgb.npy", ".net.npy"))
        r["max_abs_diff_uint8_vs_torch"] = int(np.abs(rgb.astype(int) - rgb0).max())
        r["max_abs_diff_network_vs_torch"] = float(np.abs(net - net0).max())
        r["network_output_max_abs"] = float(np.abs(net0).max())
        r["speedup_colorize_vs_torch"] = (ref["colorize_seconds"]["median"]
                                          / r["colorize_seconds"]["median"])
        r["speedup_network_vs_torch"] = (ref["network_seconds"]["median"]
                                         / r["network_seconds"]["median"])
        print(f"{label:26s} {threads} thr {runtime:9s} colorize "
              f"{r['colorize_seconds']['median']:7.3f} s ({r['speedup_colorize_vs_torch']:.2f}x)"
              f"  network {r['network_seconds']['median']:7.3f} s "
              f"({r['speedup_network_vs_torch']:.2f}x)  peak RSS {r['peak_rss_mb']:6.0f} MB  "
              f"max|d| uint8 {r['max_abs_diff_uint8_vs_torch']}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, nargs="+", default=[2],
                   help="thread counts to measure at (torch, onnxruntime and openvino alike)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", default=None)
    p.add_argument("--note", default="", help="recorded in the JSON (e.g. what else ran)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--runtime", default=None, help=argparse.SUPPRESS)
    p.add_argument("--timing", default=None, help=argparse.SUPPRESS)
    p.add_argument("--folder", default=None, help=argparse.SUPPRESS)
    p.add_argument("--export", default=None, help=argparse.SUPPRESS)
    p.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.write:  # in its own process: the measured ones' peak RSS excludes it
        write_ddcolor_tiny(os.path.join(args.folder, "ddcolor_tiny.pth"))
        return
    if args.export:
        print(json.dumps({"export_seconds": export_once(args.export, args.folder)}))
        return
    if args.one:
        print(json.dumps(memory(args.one, args.runtime, args.threads[0], args.folder)))
        return
    if args.timing:
        print(json.dumps(interleaved(args.timing, args.threads[0], args.reps, args.folder)))
        return
    command = shlex.join(["python", "benchmarks/runtime_speed.py"] + sys.argv[1:])
    results: dict = {
        "command": command.strip(), "cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
        "threads": args.threads, "reps": args.reps, "image": f"{SIDE}x{SIDE} uint8 gray "
        "(colorplug.sample(), the astronaut, resized bicubic)", "versions": versions(),
        "openvino_inference_precision": "f32 (set by colorplug; OpenVINO's default on this "
        f"CPU: {openvino_default_precision()})",
        "onnxruntime": "CPUExecutionProvider, graph optimisation ORT_ENABLE_ALL (default), "
                       "intra-op threads = torch threads",
        "weights": {"DDColor-T (ddcolor-tiny)": "random, colour embeddings scaled (speed "
                    "does not depend on the values)", "fusion": "shipped default"},
        "note": args.note, "load_average_start": os.getloadavg(), "models": {}}
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as folder:
        env["COLORPLUG_CACHE"] = os.path.join(folder, "cache")
        subprocess.run([sys.executable, __file__, "--write", "--folder", folder], check=True,
                       env=env)
        for label, (backend, options, sees) in MODELS.items():
            out = subprocess.run([sys.executable, __file__, "--export", label, "--folder",
                                  folder], capture_output=True, text=True, check=True, env=env)
            row: dict = {"backend": backend, "options": options, "network_input": sees,
                         "export_seconds": json.loads(out.stdout.splitlines()[-1])
                         ["export_seconds"], "by_threads": {}}
            for threads in args.threads:
                tenv = {**env, "OMP_NUM_THREADS": str(threads)}
                runs = {}
                for runtime in RUNTIMES:  # memory: a process each
                    out = subprocess.run(
                        [sys.executable, __file__, "--one", label, "--runtime", runtime,
                         "--threads", str(threads), "--folder", folder],
                        capture_output=True, text=True, check=True, env=tenv)
                    runs[runtime] = json.loads(out.stdout.strip().splitlines()[-1])
                out = subprocess.run(  # time: the three in one process, in turns
                    [sys.executable, __file__, "--timing", label, "--threads", str(threads),
                     "--reps", str(args.reps), "--folder", folder],
                    capture_output=True, text=True, check=True, env=tenv)
                for runtime, t in json.loads(out.stdout.strip().splitlines()[-1]).items():
                    runs[runtime].update(t)
                compare(label, runs, folder, threads)
                row["by_threads"][str(threads)] = runs
            results["models"][label] = row
    results["load_average_end"] = os.getloadavg()
    save_json(args.out, results)


if __name__ == "__main__":
    main()
