"""Video temporal coherence: flicker metrics per mode, memory vs length, throughput.

    python benchmarks/make_clips.py --split val --out clips
    python benchmarks/make_clips.py --split test --out clips
    python benchmarks/video.py tune --clips clips                 # val clips only
    python benchmarks/video.py quality --clips clips --out benchmarks/results/video_quality.json
    python benchmarks/video.py memory --out benchmarks/results/video_memory.json
    python benchmarks/video.py throughput --out benchmarks/results/video_throughput.json
    python benchmarks/video.py table benchmarks/results/video_quality.json   # docs/video.md

``quality`` reports, per test clip and mode, warp error and CDC on RGB and on a*b* only
(see colorplug.video.metrics), PSNR / colourfulness against the clip's colour ground truth,
and the same metrics of the gray input itself and of the ground truth (the floor set by the
lightness, which every mode shares). ``tune`` picks the cut threshold and the blend
strength on val clips only. ``memory`` runs each mode on 60 and 600 synthetic frames in
fresh subprocesses and reports peak RSS. ``throughput`` is frames/s at 640x480 with 2 threads
on a test clip's frames resized (``--clip``). ``table`` prints a quality JSON as markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_json  # noqa: E402


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _clip(path: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    from colorplug.evaluate import gray_input

    truth = np.load(path)
    _CUT["on"] = "_cut_" in path.stem
    return truth, [gray_input(t) for t in truth]


def _metrics(outputs, gray, truth) -> dict:
    """Metrics of a clip; a `cut` clip (make_clips.py) changes shot at half its length, and
    pairs across that cut are not compared."""
    from colorplug.video.metrics import VideoMetrics

    m = VideoMetrics()
    cut = len(gray) // 2 if _CUT["on"] else -1
    for i, (o, g, t) in enumerate(zip(outputs, gray, truth)):
        m.add(o, g, t, new_shot=i == cut)
    return m.summary()


_CUT = {"on": False}  # the clip being measured is a cut clip


def run_mode(truth, gray, backend: str, mode: str, **kw) -> dict:
    from colorplug.video import colorize_video

    t0 = time.perf_counter()
    outs = list(colorize_video(gray, backend, temporal=mode, device="cpu", **kw))
    seconds = time.perf_counter() - t0
    return {**_metrics(outs, gray, truth), "seconds": seconds}


def _ratios(res: dict) -> dict:
    off = res["off"]
    out = {}
    for mode, r in res.items():
        if mode in ("off",) or "warp_error" not in r:
            continue
        out[mode] = {k: r[k] / off[k] for k in ("warp_error", "cdc", "warp_error_ab", "cdc_ab")
                     if off.get(k)}
        if "psnr" in r:
            out[mode]["psnr_delta_db"] = r["psnr"] - off["psnr"]
    return out


def cmd_quality(args) -> None:
    _threads(args.threads)
    clips = sorted(Path(args.clips).glob("test_*.npy"))
    results: dict = {"backend": args.backend, "clips": {}, "modes": args.modes}
    for path in clips:
        truth, gray = _clip(path)
        res = {"gray_input": _metrics([np.repeat(g[..., None], 3, -1) for g in gray], gray,
                                      truth),
               "truth": _metrics(truth, gray, truth)}
        for mode in args.modes:
            if mode == "exemplar" and args.exemplar_clips and \
                    not any(path.stem.endswith(f"_{i}") for i in range(args.exemplar_clips)):
                continue
            res[mode] = run_mode(truth, gray, args.backend, mode)
            print(path.stem, mode, {k: round(v, 6) for k, v in res[mode].items()}, flush=True)
        res["ratios_vs_off"] = _ratios({k: v for k, v in res.items() if k in args.modes})
        res["gray_input_ratio_vs_off"] = {k: res["gray_input"][k] / res["off"][k]
                                          for k in ("warp_error", "cdc")}
        results["clips"][path.stem] = res
        save_json(args.out, results)
    # geometric means of the ratios over clips, per mode (a ratio per clip, then averaged)
    summary = {}
    for mode in args.modes[1:]:
        rows = [c["ratios_vs_off"][mode] for c in results["clips"].values()
                if mode in c["ratios_vs_off"]]
        if rows:
            summary[mode] = {k: float(np.exp(np.mean([np.log(r[k]) for r in rows])))
                             if k != "psnr_delta_db" else float(np.mean([r[k] for r in rows]))
                             for k in rows[0]}
            summary[mode]["clips"] = len(rows)
    summary["gray_input"] = {k: float(np.exp(np.mean([np.log(c["gray_input_ratio_vs_off"][k])
                                                       for c in results["clips"].values()])))
                             for k in ("warp_error", "cdc")}
    results["summary_ratios_vs_off"] = summary
    print(json.dumps(summary, indent=1))
    save_json(args.out, results)


def cmd_table(args) -> None:
    """Markdown of a quality JSON: per clip and mode, the ratios to `off` (RGB and a*b* warp
    error and CDC), the PSNR change, and the gray input's / ground truth's own RGB warp error
    and CDC as a share of off's (the floor that the shared lightness sets)."""
    data = json.loads(Path(args.json).read_text())
    print("| clip | mode | warp error | CDC | a\\*b\\* warp error | a\\*b\\* CDC | "
          "PSNR (dB) | ΔPSNR | gray input's warp error, CDC | truth's warp error, CDC |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, clip in data["clips"].items():
        off = clip["off"]
        floor = [", ".join(f"{clip[who][k] / off[k]:.2f}" for k in ("warp_error", "cdc"))
                 for who in ("gray_input", "truth")]
        print(f"| {name} | off | 1 | 1 | 1 | 1 | {off['psnr']:.2f} | | {floor[0]} | {floor[1]} |")
        for mode, r in clip["ratios_vs_off"].items():
            print(f"| | {mode} | {r['warp_error']:.2f} | {r['cdc']:.2f} | "
                  f"{r['warp_error_ab']:.3f} | {r['cdc_ab']:.3f} | {clip[mode]['psnr']:.2f} | "
                  f"{r['psnr_delta_db']:+.2f} | | |")
    print()
    print("| geometric mean over clips | warp error | CDC | a\\*b\\* warp error | a\\*b\\* CDC | "
          "mean ΔPSNR (dB) | clips |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode, r in data.get("summary_ratios_vs_off", {}).items():
        if mode == "gray_input":
            print(f"| gray input (floor) | {r['warp_error']:.2f} | {r['cdc']:.2f} | | | | |")
        else:
            print(f"| {mode} | {r['warp_error']:.2f} | {r['cdc']:.2f} | {r['warp_error_ab']:.3f} "
                  f"| {r['cdc_ab']:.3f} | {r['psnr_delta_db']:+.2f} | {r['clips']} |")


def cmd_tune(args) -> None:
    """Cut threshold from histogram distances on val clips; blend strength by val metrics."""
    from colorplug import color
    from colorplug.video import temporal

    _threads(args.threads)
    clips = sorted(Path(args.clips).glob("val_*.npy"))
    within, cuts = [], []
    for path in clips:
        truth, gray = _clip(path)
        det = temporal.ShotDetector(threshold=1.0)
        for i, g in enumerate(gray):
            det(color.lightness_from_gray(g / 255.0))
            if i:
                (cuts if "cut" in path.stem and i == len(gray) // 2 else within).append(
                    det.last_distance)
    threshold = float(np.sqrt(max(within) * min(cuts)))  # geometric middle of the gap
    result = {"within_shot_max": max(within), "within_shot_p99": float(np.percentile(within, 99)),
              "cut_distances": cuts, "threshold_geometric_middle": threshold}
    print(result, flush=True)
    grid = {}
    for strength in args.strengths:
        temporal.DEFAULT_SETTINGS = temporal.FlowSettings(strength=strength)
        ratios = []
        for path in clips:
            truth, gray = _clip(path)
            res = {"off": run_mode(truth, gray, args.backend, "off"),
                   "flow": run_mode(truth, gray, args.backend, "flow")}
            ratios.append(_ratios(res)["flow"])
        grid[str(strength)] = {k: float(np.mean([r[k] for r in ratios])) for k in ratios[0]}
        print(strength, grid[str(strength)], flush=True)
    result["strength_grid"] = grid
    save_json(args.out, result)


CHILD = """
import resource, sys, numpy as np, torch
torch.set_num_threads(1)
from colorplug.video import colorize_video
n, mode, backend = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def frames():
    y, x = np.mgrid[0:240, 0:320]
    for t in range(n):
        yield ((np.sin((x + 2 * t) / 17.0) * np.cos(y / 23.0) + 1) * 120).astype(np.uint8)
count = 0
for out in colorize_video(frames(), backend, temporal=mode, device="cpu"):
    count += 1
assert count == n
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def cmd_memory(args) -> None:
    results = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for mode in args.modes:
        for n in args.lengths if mode != "exemplar" else args.exemplar_lengths:
            out = subprocess.run([sys.executable, "-c", CHILD, str(n), mode, args.backend],
                                 capture_output=True, text=True, env=env, check=True)
            rss = int(out.stdout.strip().splitlines()[-1]) / 1024
            results[f"{mode}_{n}"] = {"frames": n, "peak_rss_mib": rss}
            print(mode, n, f"{rss:.0f} MiB", flush=True)
    save_json(args.out, {"backend": args.backend, "size": "320x240", "results": results})


def _throughput_frames(clip: str | None, n: int) -> list[np.ndarray]:
    """n gray 640x480 frames: a test clip's (make_clips.py) lightness, resized, so keyframes
    have real content to colour; without a clip a moving synthetic pattern."""
    if clip:
        import cv2

        if not Path(clip).is_file():
            raise SystemExit(f"--clip {clip}: no such clip; make it with benchmarks/make_clips.py "
                             "--split test --out clips, or give --clip '' for a synthetic pattern")
        _, gray = _clip(Path(clip))
        return [cv2.resize(gray[i % len(gray)], (640, 480), interpolation=cv2.INTER_LINEAR)
                for i in range(n)]
    y, x = np.mgrid[0:480, 0:640]
    return [((np.sin((x + 3 * t) / 31.0) * np.cos(y / 41.0) + 1) * 120).astype(np.uint8)
            for t in range(n)]


def cmd_throughput(args) -> None:
    from colorplug.video import colorize_video

    _threads(2)
    results = {}
    for backend in args.backends:
        for mode in args.modes:
            n = args.frames if mode != "exemplar" and backend != "exemplar" else args.slow_frames
            frames = _throughput_frames(args.clip, n + 2)
            gen = colorize_video(frames, backend, temporal=mode, device="cpu")
            next(gen), next(gen)  # model loaded, first frames done (keyframe included)
            t0 = time.perf_counter()
            count = sum(1 for _ in gen)
            fps = count / (time.perf_counter() - t0)
            results[f"{backend}/{mode}"] = {"frames": count, "fps": fps}
            print(backend, mode, f"{fps:.2f} frames/s", flush=True)
    save_json(args.out, {"size": "640x480", "threads": 2, "clip": args.clip or "synthetic",
                         "results": results,
                         "load_average_1_5_15min_at_end": os.getloadavg()})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--clips", default="clips")
    q.add_argument("--backend", default="fusion")
    q.add_argument("--modes", nargs="+", default=["off", "flow", "exemplar"])
    q.add_argument("--exemplar-clips", type=int, default=0,
                   help="exemplar only on clips NAME_0..NAME_{N-1} (it is slow on CPU)")
    q.add_argument("--threads", type=int, default=1)
    q.add_argument("--out")
    t = sub.add_parser("tune")
    t.add_argument("--clips", default="clips")
    t.add_argument("--backend", default="fusion")
    t.add_argument("--strengths", type=float, nargs="+", default=[0.7, 0.85, 0.95])
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--out")
    m = sub.add_parser("memory")
    m.add_argument("--backend", default="fusion")
    m.add_argument("--modes", nargs="+", default=["off", "flow", "exemplar"])
    m.add_argument("--lengths", type=int, nargs="+", default=[60, 600])
    m.add_argument("--exemplar-lengths", type=int, nargs="+", default=[60, 200])
    m.add_argument("--out")
    r = sub.add_parser("throughput")
    r.add_argument("--backends", nargs="+", default=["gray", "autoencoder", "fusion", "cgan"])
    r.add_argument("--modes", nargs="+", default=["off", "flow", "exemplar"])
    r.add_argument("--frames", type=int, default=48)
    r.add_argument("--slow-frames", type=int, default=8)
    r.add_argument("--clip", default="clips/test_pan_0.npy",
                   help="test clip to resize to 640x480 ('' for a synthetic pattern)")
    r.add_argument("--out")
    tb = sub.add_parser("table", help="markdown of a quality JSON (for docs/video.md)")
    tb.add_argument("json")
    args = p.parse_args()
    {"quality": cmd_quality, "tune": cmd_tune, "memory": cmd_memory,
     "throughput": cmd_throughput, "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    main()
