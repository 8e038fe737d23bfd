"""Train the retrieval descriptor of `exemplar` (see `retrieval`): a linear head on the frozen
similarity network's pooled features, trained to classify the photos' scene classes, on a
fixed split's train part only; retrieval is measured on its val part (queries) against the
train part (gallery): top-1 same-package and same-class rates, head vs plain pooled features.

    python -m colorplug.backends.exemplar.train_descriptor --data /work/photos512 \
        --split photos_v1 --out exemplar_descriptor_v1.safetensors [--report FILE.json]

Scene class: the source package; for the one big package of mixed scenes (GCompris' activity
images) the activity and subject (``categorization_fish``, ``explore_monuments``, ...).
"""
from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...color import lightness_from_rgb
from ...image import read_image, resize_map, working_shape
from .colorizer import load_similarity
from .retrieval import DescriptorConfig, DescriptorHead, plain_descriptor, pooled

MIN_CLASS = 3


def scene_class(name: str, package: str, counts: Counter | None = None) -> str:
    """The package; for GCompris its activity + subject when that group has >= MIN_CLASS
    photos, else its activity."""
    if not package.startswith("gcompris"):
        return package
    stem = re.sub(r"\d+$", "", Path(name.split("__", 1)[1]).stem)
    if counts is not None and counts[stem] >= MIN_CLASS:
        return "gcompris:" + stem
    parts = stem.split("_")
    return "gcompris:" + "_".join(parts[:2] if parts[0] == "explore" else parts[:1])


def lightness_of(path: Path) -> np.ndarray:
    rgb = read_image(path)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, -1)
    rgb = rgb[..., :3].astype(np.float32) / (65535.0 if rgb.dtype == np.uint16 else 255.0)
    return lightness_from_rgb(rgb).astype(np.float32)


def views(lum: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """The whole photo, its mirror, and n-2 random crops (60-90 % of each side) with a
    random gamma."""
    out = [lum, lum[:, ::-1]]
    h, w = lum.shape
    for _ in range(max(0, n - 2)):
        s = rng.uniform(0.6, 0.9)
        ch, cw = int(h * s), int(w * s)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = lum[y:y + ch, x:x + cw]
        out.append(100.0 * (crop / 100.0).clip(0, 1) ** rng.uniform(0.8, 1.25))
    return out


@torch.inference_mode()
def pooled_of(net, lum: np.ndarray, working_size: int) -> np.ndarray:
    h, w = working_shape(*lum.shape, working_size, multiple=32)
    x = torch.from_numpy(np.ascontiguousarray(resize_map(lum, w, h), dtype=np.float32))[None, None]
    return pooled(net(x))[0].numpy()


def retrieval_rates(q: torch.Tensor, g: torch.Tensor, q_labels: list[str], g_labels: list[str]
                    ) -> float:
    """Share of queries whose top-1 gallery item (cosine) has the same label."""
    best = (q @ g.T).argmax(1).tolist()
    return float(np.mean([q_labels[i] == g_labels[j] for i, j in enumerate(best)]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of the split's photos")
    p.add_argument("--split", default="photos_v1")
    p.add_argument("--out", required=True)
    p.add_argument("--similarity", default=None,
                   help="similarity weights the descriptor is trained on (default: the shipped ones)")
    p.add_argument("--views", type=int, default=4, help="views per train photo")
    p.add_argument("--working-size", type=int, default=256)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--features-cache", default=None, help="npz of pooled features to reuse")
    p.add_argument("--report", default=None, help="write the retrieval measurements (JSON)")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    from ...train.split import load_split
    from ...weights import save

    split = load_split(args.split)
    data = Path(args.data)
    train = [n for n in split.names("train") if (data / n).is_file()]
    val = [n for n in split.names("val") if (data / n).is_file()]
    stems = Counter(re.sub(r"\d+$", "", Path(n.split("__", 1)[1]).stem)
                    for n in train if split.package[n].startswith("gcompris"))
    cls = {n: scene_class(n, split.package[n], stems) for n in train + val}
    t0 = time.perf_counter()
    cache = Path(args.features_cache) if args.features_cache else None
    if cache and cache.is_file():
        z = np.load(cache)
        xt, yt_names, xv = z["xt"], list(z["yt"]), z["xv"]
    else:
        net, _ = load_similarity(args.similarity)
        net.eval()
        rng = np.random.default_rng(args.seed)
        xt, yt_names = [], []
        for n in train:
            for v in views(lightness_of(data / n), rng, args.views):
                xt.append(pooled_of(net, v, args.working_size))
                yt_names.append(n)
        xv = [pooled_of(net, lightness_of(data / n), args.working_size) for n in val]
        xt, xv = np.stack(xt), np.stack(xv)
        if cache:
            np.savez(cache, xt=xt, yt=np.array(yt_names), xv=xv)
    print(f"features: {len(xt)} train views, {len(xv)} val photos, "
          f"{time.perf_counter() - t0:.0f} s")
    classes = sorted({cls[n] for n in train})
    y = torch.tensor([classes.index(cls[n]) for n in yt_names])
    x = torch.from_numpy(xt).float()
    counts = torch.bincount(y, minlength=len(classes)).float()
    head = DescriptorHead(DescriptorConfig(dim=args.dim, classes=len(classes)))
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp(min=1e-4))
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    weight = (counts.sum() / counts.clamp(min=1)) ** 0.5  # class-balanced (square root)
    for epoch in range(args.epochs):
        head.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            b = perm[i:i + 128]
            emb = head.embed(x[b] + 0.05 * torch.randn_like(x[b]) * head.std)
            logits = head.classifier(emb) * 10.0  # cosine-like logits need a scale
            loss = F.cross_entropy(logits, y[b], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    head.eval()
    # retrieval on val: queries = val photos, gallery = train photos (whole view only)
    whole = [i for i, n in enumerate(yt_names) if i == 0 or yt_names[i - 1] != n]
    g_names = [yt_names[i] for i in whole]
    g_raw, q_raw = x[whole], torch.from_numpy(xv).float()
    layer4 = slice(2 * 256, 2 * 256 + 512)  # mean of layer4 (the "pooled features")
    pkg = lambda names: [split.package[n] for n in names]
    klass = lambda names: [cls[n] for n in names]
    with torch.no_grad():
        variants = {
            "layer4_mean": (plain_descriptor(q_raw[:, layer4]), plain_descriptor(g_raw[:, layer4])),
            "pooled_plain": (plain_descriptor((q_raw - head.mean) / head.std),
                             plain_descriptor((g_raw - head.mean) / head.std)),
            "head": (head.embed(q_raw), head.embed(g_raw)),
        }
    report: dict = {"split": split.name, "queries": f"val ({len(val)} photos)",
                    "gallery": f"train ({len(g_names)} photos)", "classes": len(classes),
                    "train_views": len(x), "top1_same_package": {}, "top1_same_class": {}}
    for name, (q, g) in variants.items():
        report["top1_same_package"][name] = retrieval_rates(q, g, pkg(val), pkg(g_names))
        report["top1_same_class"][name] = retrieval_rates(q, g, klass(val), klass(g_names))
    # chance level: a random gallery photo
    report["chance_same_package"] = float(np.mean([np.mean([a == b for b in pkg(g_names)])
                                                   for a in pkg(val)]))
    print(json.dumps(report, indent=1))
    state = {k: v for k, v in head.state_dict().items() if not k.startswith("classifier.")}
    meta = {"backend": "exemplar", "kind": "descriptor",
            "config": DescriptorConfig(in_dim=head.cfg.in_dim, dim=args.dim).to_dict(),
            "training": {"split": split.name, "part": "train", "photos": len(train),
                         "views_per_photo": args.views, "working_size": args.working_size,
                         "classes": classes, "epochs": args.epochs, "lr": args.lr,
                         "weight_decay": args.weight_decay, "seed": args.seed,
                         "similarity": f"{Path(args.similarity).name if args.similarity else 'the shipped default'} (frozen)"},
            "metrics": {k: report[k] for k in ("top1_same_package", "top1_same_class")}}
    save(args.out, state, meta)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
