"""Datasets over folders of colour photos: cached decoding, random crops and flips."""
from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from ..image import find_images


def split_paths(paths: Sequence[Path], val_fraction: float) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split by a hash of each file name.

    The same file always lands on the same side, whatever else is in the folder, so the
    held-out photos stay held out across runs and machines.
    """
    def bucket(p: Path) -> float:
        return int(hashlib.sha1(Path(p).name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    train, val = [], []
    for p in paths:
        (val if bucket(p) < val_fraction else train).append(Path(p))
    if val_fraction > 0 and not val and len(train) > 1:
        val.append(train.pop())
    # a small folder whose names all hash low: keep about `val_fraction` of it for val (the
    # lowest buckets) and train on the rest, never on nothing
    keep = max(1, round(len(paths) * val_fraction))
    if not train and len(val) > 1:
        val.sort(key=bucket)
        val, train = val[:min(keep, len(val) - 1)], val[min(keep, len(val) - 1):]
    return train, val


def collect(data: Sequence[str | Path] | str | Path) -> list[Path]:
    paths = find_images(data)
    if not paths:
        raise InputError(f"no image files (.jpg, .png, .webp, .tif) found in {data}")
    return paths


class PhotoDataset(Dataset):
    """RGB crops in [0, 1], shaped (3, size, size).

    Images are decoded once and kept in memory reduced to `cache_side` (longest side).
    Training samples are random resized crops (area `scale`, aspect 3:4..4:3) with
    horizontal flips; with probability `full_prob` the whole image squashed to a square
    (what inference at a fixed working size sees). Validation samples are the whole image
    squashed, deterministic.
    """

    def __init__(self, paths: Sequence[Path], size: int, *, train: bool = True,
                 samples_per_epoch: int | None = None, cache_side: int | None = None,
                 scale: tuple[float, float] = (0.2, 1.0), full_prob: float = 0.25) -> None:
        from PIL import Image

        self.size = size
        self.train = train
        self.scale = scale
        self.full_prob = full_prob
        self.samples = samples_per_epoch
        side = cache_side or size * 4
        self.images = []
        self.paths = []
        for p in paths:
            try:
                with Image.open(p) as im:
                    im = im.convert("RGB")
                    im.thumbnail((side, side), Image.LANCZOS)
                    self.images.append(im.copy())
                    self.paths.append(Path(p))
            except OSError:
                continue  # unreadable training files are skipped, not fatal
        if not self.images:
            raise InputError("none of the training images could be read")

    def __len__(self) -> int:
        return self.samples or len(self.images)

    def _crop_box(self, w: int, h: int) -> tuple[float, float, float, float]:
        if random.random() < self.full_prob:
            return (0, 0, w, h)
        area = w * h
        for _ in range(10):
            target = area * random.uniform(*self.scale)
            ratio = np.exp(random.uniform(np.log(3 / 4), np.log(4 / 3)))
            cw, ch = np.sqrt(target * ratio), np.sqrt(target / ratio)
            if cw <= w and ch <= h:
                x0, y0 = random.uniform(0, w - cw), random.uniform(0, h - ch)
                return (x0, y0, x0 + cw, y0 + ch)
        s = min(w, h)
        return ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        img = self.images[index % len(self.images)]
        w, h = img.size
        box = self._crop_box(w, h) if self.train else (0, 0, w, h)
        crop = img.resize((self.size, self.size), Image.BILINEAR, box=box,
                          reducing_gap=2.0)
        arr = np.asarray(crop, dtype=np.float32) / 255.0
        if self.train and random.random() < 0.5:
            arr = arr[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
