"""Fine-tuning on a CPU ("teach it your images", issue 32): does a few minutes of training
from the shipped weights beat them, and beat training from scratch, on images none of the
shipped weights saw?

Two domains, each split into a training part and a held-out part by a fixed rule:
- ``scratch``: the photos of Debian's ``scratch`` package (backdrops of one theme; a test
  package of split photos_v1, so no shipped weights trained on it); held out: the photos
  whose SHA-1 name bucket is below 0.25 (`colorplug.train.split.name_bucket`).
- ``histology``: scikit-image's immunohistochemistry and retina images cut into 224-px
  tiles; training tiles from the left 60 % of each image, held-out tiles from the right
  40 % (different regions, no overlap); tiles darker than L* 8 on average (the retina's
  black surround) are left out.

Runs per domain (fusion, 2 CPU threads, seed 0): the shipped default (and the same weights
decoded at saturation 1, the gain fine-tuned weights decode at); fine-tuned from it
for 10 minutes with the best validated weights recorded at 2, 5 and 10 minutes (one run:
with the fine-tuning schedule's flat learning rate after its 20-step warm-up, a 2-minute
run is the first 2 minutes of a 10-minute one); trained from scratch for 10 minutes (same
network width, the backend's own from-scratch settings); and fine-tuned on only 10 of the
training images for 5 minutes. Scores on the held-out part at full tile/photo size: PSNR,
CIEDE2000, |colourfulness - truth's|. The val part that picks the kept weights is carved
from the training part (20 %); the held-out part is never read in training.

    python benchmarks/finetune.py --photos PHOTOS_DIR --work /tmp/finetune \\
        --out benchmarks/results/finetune.json
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

TILE = 224
STRIDE = 112
SNAPSHOTS_MIN = (2, 5, 10)


def tiles(image: np.ndarray, x0: int, x1: int) -> list[np.ndarray]:
    """224-px tiles at a 112-px stride inside columns [x0, x1) of `image`."""
    from colorplug.color import lightness_from_rgb

    h = image.shape[0]
    out = []
    for y in range(0, h - TILE + 1, STRIDE):
        for x in range(x0, x1 - TILE + 1, STRIDE):
            tile = image[y:y + TILE, x:x + TILE]
            if lightness_from_rgb(tile.astype(np.float64) / 255).mean() >= 8:
                out.append(tile)
    return out


def make_histology(folder: Path) -> None:
    import skimage.data

    from colorplug.image import write_image

    for name in ("immunohistochemistry", "retina"):
        image = getattr(skimage.data, name)()[..., :3]
        cut = int(image.shape[1] * 0.6)
        for part, (x0, x1) in (("train", (0, cut)), ("heldout", (cut, image.shape[1]))):
            (folder / part).mkdir(parents=True, exist_ok=True)
            for i, tile in enumerate(tiles(image, x0, x1)):
                write_image(folder / part / f"{name}_{i:03d}.png", tile, overwrite=True)


def make_scratch(folder: Path, photos: Path) -> None:
    from colorplug.train.split import name_bucket

    for p in sorted(photos.glob("scratch__*")):
        part = "heldout" if name_bucket(p.name) < 0.25 else "train"
        (folder / part).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, folder / part / p.name)


def first_ten(folder: Path, target: Path) -> None:
    """Ten training images, by a hash of their names independent of the one that carves
    the val part (the lowest val-hash buckets would all be val)."""
    import hashlib

    target.mkdir(parents=True, exist_ok=True)
    for p in sorted(folder.iterdir(),
                    key=lambda q: hashlib.sha1(b"ten:" + q.name.encode()).hexdigest())[:10]:
        shutil.copyfile(p, target / p.name)


def finetune_with_snapshots(data: Path, work: Path, minutes: float, base: str | None
                            ) -> dict[str, Path]:
    """One run; the best validated weights as they stood at each snapshot time. A run whose
    final snapshot exists already is not trained again (the script resumes where it
    stopped; each snapshot's weights carry their own training record)."""
    final = work / f"at_{int(minutes)}min.safetensors"
    wanted = [m for m in SNAPSHOTS_MIN if m < minutes] + [int(minutes)]
    if final.is_file():
        return {f"{m}min": work / f"at_{m}min.safetensors" for m in wanted
                if (work / f"at_{m}min.safetensors").is_file()}
    from colorplug.train.finetune import (FINETUNE_BATCH_SIZE, FINETUNE_STEPS_PER_EPOCH,
                                          FINETUNE_VAL_FRACTION, base_weights, trainer_for)
    from colorplug.train.loop import TrainConfig, fit

    trainer = trainer_for("fusion")
    parser = argparse.ArgumentParser()
    trainer.add_arguments(parser)
    args = parser.parse_args(["--width", "0.4"] if base is None else [])
    out = work / "weights.safetensors"
    if base is not None:
        args.warmup, lr = 20, args.lr * 0.1
    else:
        lr = args.lr
    cfg = TrainConfig(data=[str(data)], out=out, epochs=100_000, batch_size=FINETUNE_BATCH_SIZE,
                      lr=lr, seed=0, val_fraction=FINETUNE_VAL_FRACTION, device="cpu",
                      steps_per_epoch=FINETUNE_STEPS_PER_EPOCH, budget_min=minutes,
                      base=base_weights("fusion", base) if base else None,
                      extra=vars(args).copy())
    snaps: dict[str, Path] = {}
    pending = [m for m in SNAPSHOTS_MIN if m < minutes]

    def on_record(record: dict) -> None:
        while pending and record.get("elapsed_s", 0) >= pending[0] * 60 and out.is_file():
            m = pending.pop(0)
            shutil.copyfile(out, work / f"at_{m}min.safetensors")
            snaps[f"{m}min"] = work / f"at_{m}min.safetensors"

    fit(trainer.make_task(args), cfg, progress=False, on_record=on_record)
    shutil.copyfile(out, final)
    snaps[f"{int(minutes)}min"] = final
    return snaps


def record_of(weights: Path) -> dict:
    """What a snapshot's weights say about their training: the epoch kept, and the steps
    and seconds of the run when they were written."""
    from colorplug.weights import read_metadata

    meta = read_metadata(weights)
    training = meta.get("training", {})
    return {"kept_epoch": meta.get("metrics", {}).get("epoch"),
            "steps_when_kept": training.get("steps"),
            "seconds_when_kept": training.get("seconds"),
            "val_images": training.get("n_val_images")}


def score(label: str, weights: str | None, heldout: Path, query: str = "") -> dict:
    from colorplug import evaluate as ev
    from colorplug.weights import sha256_file

    photos = ev.load_photos(heldout)
    spec = f"{label}=fusion" + (f"?weights={weights}" if weights else "")
    if query:
        spec += ("&" if "?" in spec else "?") + query
    _rows, summary, _ = ev.evaluate([spec], photos, device="cpu")
    s = summary[label]
    return {"psnr": round(s["psnr"], 3), "delta_e": round(s["delta_e"], 3),
            "delta_cf": round(s["delta_cf"], 3), "images": len(photos),
            "weights_sha256": sha256_file(weights) if weights else
            "b14120b22d36b1b36aa4008c4fdda65a997cb008b8e3d61347d735503a369077"}


def main() -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=Path, required=True, help="fetch_photos.sh's folder")
    p.add_argument("--work", type=Path, default=Path("/tmp/finetune"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/finetune.json"))
    p.add_argument("--domains", nargs="+", default=["scratch", "histology"])
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    results = json.loads(a.out.read_text()) if a.out.is_file() else {}
    results["machine"] = {"threads": a.threads, "device": "cpu", "torch": torch.__version__}
    for domain in a.domains:
        folder = a.work / domain
        if not (folder / "train").is_dir():
            make_scratch(folder, a.photos) if domain == "scratch" else make_histology(folder)
        first_ten(folder / "train", folder / "train10")
        rows: dict[str, dict] = {}
        t0 = time.time()
        heldout = folder / "heldout"
        rows["shipped default"] = score("default", None, heldout)
        # fine-tuned weights decode at saturation 1 (FusionTask.on_train_start): the shipped
        # weights at that gain separate what training adds from what the gain does
        rows["shipped default, saturation 1"] = score("sat1", None, heldout, "saturation=1")
        runs = [("fine-tuned", "train", "ft", 10, "default"),
                ("from scratch", "train", "scratch", 10, None),
                ("fine-tuned, 10 images,", "train10", "ft10", 5, "default")]
        for label, data, work, minutes, base in runs:
            snaps = finetune_with_snapshots(folder / data, folder / work, minutes, base)
            for m, file in snaps.items():
                if label == "from scratch" and m != "10min":
                    continue
                rows[f"{label} {m}"] = {**score(m, str(file), heldout), **record_of(file)}
        results[domain] = {"train_images": len(list((folder / "train").iterdir())),
                           "heldout_images": len(list((folder / "heldout").iterdir())),
                           "rows": rows, "wall_s": round(time.time() - t0)}
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({domain: results[domain]}, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
