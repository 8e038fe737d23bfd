"""exemplar inference time: a 1 MP target with a 1 MP reference, with the colour network
and training-free (refine=False), plus where the time goes (features, correspondence,
colour net), side by side in one run.

    python benchmarks/exemplar.py [--device cpu] [--threads 2] [--out FILE]
"""
from __future__ import annotations

import argparse
import time

from _common import save_json, timed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--working-size", type=int, default=256)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import colorplug
    from colorplug.backends.exemplar.colorizer import build_input
    from colorplug.backends.exemplar.correspond import correspond, warp_ab

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:1024, 0:1024] / 1024
    gray = (128 + 100 * np.sin(7 * x) * np.cos(5 * y)).astype(np.uint8)
    ref = np.stack([(128 + 100 * np.sin(6 * x + c) * np.cos(4 * y - c)) for c in (0, 1, 2)], -1)
    ref = (ref + rng.normal(0, 5, ref.shape)).clip(0, 255).astype(np.uint8)
    res: dict = {"threads": args.threads, "device": args.device,
                 "working_size": args.working_size, "1MP_plus_1MP_ref_s": {}, "stages_s": {}}
    for refine in (True, False):
        c = colorplug.get("exemplar", device=args.device, refine=refine,
                          working_size=args.working_size)
        key = "refine" if refine else "warp_only"
        res["1MP_plus_1MP_ref_s"][key] = timed(lambda: c.colorize(gray, reference=ref),
                                               args.reps)["median"]
        print(f"exemplar ({key}) 1 MP + 1 MP reference: {res['1MP_plus_1MP_ref_s'][key]:.3f} s")
    # stage breakdown at the working size
    c = colorplug.get("exemplar", device=args.device, working_size=args.working_size)
    dev = c.device
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    from colorplug import color

    lab = color.rgb_to_lab(ref / 255.0)
    tl = c._lightness(gray.astype(np.float32) / 2.55)
    rl = c._lightness(lab[..., 0])
    with torch.inference_mode():
        def stage(name, fn):
            fn()
            sync()
            t0 = time.perf_counter()
            out = fn()
            sync()
            res["stages_s"][name] = time.perf_counter() - t0
            return out
        ft = stage("features_target", lambda: c.similarity(tl))
        fr = stage("features_reference", lambda: c.similarity(rl))
        corr = stage("correspondence_5_levels", lambda: correspond(ft, fr))
        ab = torch.zeros(1, 2, *rl.shape[-2:], device=dev)
        warped = warp_ab(ab, corr.t_to_r, fr[0].shape[-2:])
        stage("colour_net", lambda: c.color_net(build_input(tl, warped, corr.similarities)))
    for k, v in res["stages_s"].items():
        print(f"  {k}: {v:.3f} s")
    save_json(args.out, res)


if __name__ == "__main__":
    main()
