"""exemplar without a reference (gallery retrieval + fusion by confidence).

``sweep``: on a split part (val: choose k and threshold there only), each photo's gray
version gets its KMAX best gallery references once; every (k, threshold) is then fused from
those and scored (PSNR, SSIM, CF, dCF = |mean CF - mean CF of the truth|, dE00, the share of
pixels given confident colour), next to gray and to the issue's baseline (top-1 by the
plain pooled features, no fade).

``time``: a 1 MP target on N threads with the default gallery, retrieval included, and
where the time goes; and the one-off cost of indexing the default gallery without the
shipped index.

    python benchmarks/exemplar_auto.py sweep --data /work/photos512 --split photos_v1:val \
        --out benchmarks/results/exemplar_auto_val_sweep.json
    python benchmarks/exemplar_auto.py time --threads 2 \
        --out benchmarks/results/exemplar_auto_time_cpu.json
"""
from __future__ import annotations

import argparse
import time

from _common import save_json, timed

KS = (1, 2, 3, 4, 6)
THRESHOLDS = (0.0, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def scores(outputs, truths):
    import numpy as np

    from colorplug import evaluate as ev

    rows = [(ev.psnr(o, t), ev.ssim(o, t), ev.colourfulness(o), ev.colourfulness(t),
             ev.delta_e2000(o, t)) for o, t in zip(outputs, truths)]
    a = np.array(rows)
    return {"psnr": float(np.minimum(a[:, 0], 100).mean()), "ssim": float(a[:, 1].mean()),
            "cf": float(a[:, 2].mean()), "cf_truth": float(a[:, 3].mean()),
            "delta_cf": float(abs(a[:, 2].mean() - a[:, 3].mean())),
            "delta_e": float(a[:, 4].mean())}


def sweep(args) -> None:
    import numpy as np
    import torch

    import colorplug
    from colorplug import color
    from colorplug import evaluate as ev
    from colorplug.backends.exemplar.colorizer import fuse
    from colorplug.backends.exemplar.retrieval import plain_descriptor, pooled
    from colorplug.pipeline import recombine
    from colorplug.train.split import parse_split_spec

    split, part = parse_split_spec(args.split)
    photos = ev.load_photos(args.data, names=set(split.names(part)), max_side=args.max_side,
                            limit=args.limit)
    options = {"gallery": args.gallery} if args.gallery else {}
    for name in ("weights", "similarity_weights", "descriptor_weights"):
        if getattr(args, name):
            options[name] = getattr(args, name)
    c = colorplug.get("exemplar", device="cpu", **options)
    kmax = max(KS)
    truths, lums, cands, plain = [], [], [], []
    t0 = time.perf_counter()
    index = c.index()
    with torch.inference_mode():  # the baseline's gallery descriptors, once
        g = np.stack([plain_descriptor(pooled(c._gallery_ref(p).feats))[0].numpy()
                      for p in index.files])
    for i, (name, truth) in enumerate(photos):
        lum = color.lightness_from_gray(ev.gray_input(truth) / 255.0).astype(np.float32)
        cands.append(c.candidates(lum, k=kmax))
        # the issue's baseline: top-1 by the plain pooled features (no head), no fade
        with torch.inference_mode():
            feats = c._features(c._lightness(lum))
            q = plain_descriptor(pooled(feats))[0].numpy()
            best = index.files[int(np.argmax(g @ q))]
            ab, sims = c._chroma(c._lightness(lum), feats, c._gallery_ref(best))
        plain.append(ab[0])
        truths.append(truth)
        lums.append(lum)
        print(f"{i + 1}/{len(photos)} {name}: {[p.name for p, _ in cands[-1].files[:3]]}",
              flush=True)
    seconds = time.perf_counter() - t0

    def render(ab_list):
        return [recombine(l, ab.permute(1, 2, 0).numpy(), None, "uint8")
                for l, ab in zip(lums, ab_list)]

    res: dict = {"split": args.split, "photos": len(photos), "max_side": args.max_side,
                 "gallery": args.gallery or "default (shipped)",
                 "gallery_size": len(c.index().files), "seconds_candidates": seconds,
                 "gray": scores([np.repeat(ev.gray_input(t)[..., None], 3, -1) for t in truths],
                                truths),
                 "top1_plain_pooled_no_fade": scores(render(plain), truths), "grid": []}
    for k in KS:
        for t in THRESHOLDS:
            fused = [fuse(cd, k, t) for cd in cands]
            entry = {"k": k, "threshold": t, **scores(render([f[0] for f in fused]), truths),
                     "confident_share": float(np.mean([(f[1] >= 0.5).float().mean().item()
                                                       for f in fused])),
                     "mean_gain": float(np.mean([f[1].mean().item() for f in fused]))}
            res["grid"].append(entry)
            print(f"k={k} t={t:.2f} PSNR {entry['psnr']:.2f} SSIM {entry['ssim']:.4f} "
                  f"dCF {entry['delta_cf']:.2f} dE {entry['delta_e']:.2f} "
                  f"confident {entry['confident_share']:.2f}", flush=True)
    gray = res["gray"]["psnr"]
    ok = [e for e in res["grid"] if e["psnr"] >= gray]
    chosen = min(ok, key=lambda e: e["delta_cf"]) if ok else max(res["grid"],
                                                                 key=lambda e: e["psnr"])
    res["options"] = {k: str(v) for k, v in options.items()}
    res["rule"] = ("lowest dCF among (k, threshold) with PSNR >= gray; else the highest PSNR")
    res["chosen"] = chosen
    print("gray", res["gray"], "\nplain top-1", res["top1_plain_pooled_no_fade"],
          "\nchosen", chosen)
    save_json(args.out, res)


def timing(args) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import colorplug
    from colorplug import color
    from colorplug.backends.exemplar.colorizer import fuse
    from colorplug.backends.exemplar.retrieval import load_or_build, pooled

    gray = np.asarray(colorplug.sample("astronaut_gray"))
    from PIL import Image

    gray = np.asarray(Image.fromarray(gray).resize((1024, 1024), Image.BICUBIC))
    c = colorplug.get("exemplar", device="cpu")
    t0 = time.perf_counter()
    index = c.index()
    res: dict = {"threads": args.threads, "target": "1024x1024 (astronaut, upscaled)",
                 "k": c.k, "threshold": c.threshold, "gallery_size": len(index.files),
                 "shipped_index": index.cached, "first_index_s": time.perf_counter() - t0}
    res["colorize_1MP_s"] = timed(lambda: c.colorize(gray), args.reps)
    res["colorize_1MP_with_reference_s"] = timed(
        lambda: c.colorize(gray, reference=colorplug.sample("astronaut_color")), args.reps)
    # where the time goes (the gallery photos' features are kept between targets)
    lum = color.lightness_from_gray(gray / 255.0).astype(np.float32)
    stages = {}
    with torch.inference_mode():
        t = time.perf_counter()
        tl = c._lightness(lum)
        feats = c._features(tl)
        q = c.descriptor().embed(pooled(feats))[0].numpy()
        found = index.top_k(q, c.k)
        stages["target_features_and_retrieval"] = time.perf_counter() - t
        t = time.perf_counter()
        refs = [c._gallery_ref(p) for p, _ in found]
        stages["reference_features_cached"] = time.perf_counter() - t
        t = time.perf_counter()
        outs = [c._chroma(tl, feats, r) for r in refs]
        stages[f"correspondence_and_colour_net_x{c.k}"] = time.perf_counter() - t
        t = time.perf_counter()
        cands = c.candidates(lum)
        ab, _ = fuse(cands, c.k, c.threshold)
        stages["candidates_and_fusion_total"] = time.perf_counter() - t
    res["stages_s"] = stages
    # indexing the default gallery from scratch (what a user gallery of this size costs once)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["COLORPLUG_CACHE"] = tmp
        c._refs.clear()
        head = c.descriptor()
        t = time.perf_counter()
        with torch.inference_mode():
            load_or_build(index.files, "bench", lambda p: head.embed(
                pooled(c._gallery_ref(p).feats))[0].numpy())
        res["index_default_gallery_from_scratch_s"] = time.perf_counter() - t
    print(res)
    save_json(args.out, res)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("sweep")
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="photos_v1:val")
    s.add_argument("--gallery", default=None)
    s.add_argument("--weights", default=None, help="colour network weights (default: shipped)")
    s.add_argument("--similarity-weights", default=None)
    s.add_argument("--descriptor-weights", default=None)
    s.add_argument("--max-side", type=int, default=256)
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--out", default=None)
    t = sub.add_parser("time")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--reps", type=int, default=3)
    t.add_argument("--out", default=None)
    args = p.parse_args()
    if args.mode == "sweep":
        import torch

        torch.set_num_threads(args.threads)
        sweep(args)
    else:
        timing(args)


if __name__ == "__main__":
    main()
