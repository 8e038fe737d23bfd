"""Reference recommendation for `exemplar` without a user reference (He et al. 2018, sec. 4).

A global descriptor of a photo's lightness: per-channel mean and standard deviation of the
similarity network's deepest two feature levels (`pooled`), projected by a small linear
head trained to tell the photos' scene classes apart (`DescriptorHead`, trained by
`colorplug.backends.exemplar.train_descriptor`), L2-normalised, compared by cosine.

A gallery is a folder of colour photos; its index (file list + descriptors) is cached in
``<colorplug cache>/exemplar_gallery/`` under a key made of the files' names, sizes and
mtimes, the descriptor weights' SHA-256 and the working size, so it is computed once and
rebuilt when the gallery or the weights change.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InputError
from ...image import IMAGE_SUFFIXES

#: feature levels pooled into the descriptor (layer3 and layer4: 256 + 512 channels)
POOL_LEVELS = (3, 4)
POOLED_DIM = 2 * (256 + 512)
#: the default gallery shipped with the package (thumbnails of permissively licensed photos)
DEFAULT_GALLERY = Path(__file__).with_name("gallery")
SHIPPED_INDEX = "index.npz"


def pooled(feats: list[torch.Tensor]) -> torch.Tensor:
    """[B, POOLED_DIM]: per-channel mean and std of the similarity features' levels 3 and 4."""
    parts = []
    for k in POOL_LEVELS:
        f = feats[k].float().flatten(2)
        parts += [f.mean(2), f.std(2, unbiased=False)]
    return torch.cat(parts, 1)


@dataclass
class DescriptorConfig:
    in_dim: int = POOLED_DIM
    dim: int = 128
    classes: int = 0  # the training classifier's outputs (0: none stored)

    def to_dict(self) -> dict[str, int]:
        return {"in_dim": self.in_dim, "dim": self.dim, "classes": self.classes}


class DescriptorHead(nn.Module):
    """Standardised pooled features -> a unit-length embedding of `dim` values; during
    training also a linear classifier over the scene classes on top of it."""

    def __init__(self, cfg: DescriptorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or DescriptorConfig()
        self.register_buffer("mean", torch.zeros(cfg.in_dim))
        self.register_buffer("std", torch.ones(cfg.in_dim))
        self.proj = nn.Linear(cfg.in_dim, cfg.dim)
        self.classifier = nn.Linear(cfg.dim, cfg.classes) if cfg.classes else None

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj((x - self.mean) / self.std), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


def plain_descriptor(x: torch.Tensor) -> torch.Tensor:
    """The untrained baseline: the pooled features, L2-normalised."""
    return F.normalize(x, dim=1)


# ------------------------------------------------------------------------- gallery
@dataclass
class GalleryIndex:
    """A gallery's files and their unit-length descriptors [N, D]."""

    files: list[Path]
    descriptors: np.ndarray
    cached: bool = False  # loaded from the cache (not computed now)

    def top_k(self, query: np.ndarray, k: int) -> list[tuple[Path, float]]:
        """The k most similar files by cosine, best first."""
        sims = self.descriptors @ np.asarray(query, dtype=np.float32).ravel()
        order = np.argsort(-sims, kind="stable")[:k]
        return [(self.files[i], float(sims[i])) for i in order]


def gallery_files(folder: str | Path, *, option: str = "gallery") -> list[Path]:
    """The image files directly in `folder`, sorted; a missing or empty folder is an
    InputError naming `option`."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"{option}={str(folder)!r} is not a folder of colour photos "
                         "(it does not exist or is not a directory)")
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{option}={str(folder)!r} holds no images "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))}); give a folder of colour photos")
    return files


def index_key(files: list[Path], weights_sha256: str, working_size: int) -> str:
    """The cache key of a gallery: names, sizes and mtimes of its files, the descriptor
    weights and the working size the descriptors were computed at."""
    h = hashlib.sha256()
    h.update(json.dumps({"weights": weights_sha256, "working_size": working_size,
                         "version": 1}).encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def index_dir() -> Path:
    from ...cache import cache_dir

    return cache_dir() / "exemplar_gallery"


def load_or_build(files: list[Path], key: str,
                  describe: Callable[[Path], np.ndarray]) -> GalleryIndex:
    """The cached index under `key`, else descriptors computed by `describe` (one file ->
    [D]) and written to the cache (atomically; an unwritable cache only costs the reuse)."""
    path = index_dir() / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                names = [str(n) for n in data["files"]]
                desc = data["descriptors"].astype(np.float32)
            if names == [str(p) for p in files] and len(desc) == len(files):
                return GalleryIndex(files, desc, cached=True)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    desc = np.stack([describe(p) for p in files]).astype(np.float32)
    try:
        import io

        from ...files import write_bytes_atomic

        buf = io.BytesIO()
        np.savez(buf, files=np.array([str(p) for p in files]), descriptors=desc)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, buf.getvalue(), overwrite=True)
    except OSError:
        pass
    return GalleryIndex(files, desc)


def shipped_index(files: list[Path], weights_sha256: str, working_size: int
                  ) -> GalleryIndex | None:
    """The default gallery's precomputed index (``gallery/index.npz``, written by
    `write_shipped_index`), when it was made for these files, weights and working size."""
    path = DEFAULT_GALLERY / SHIPPED_INDEX
    if not path.is_file() or any(p.parent != DEFAULT_GALLERY for p in files):
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["files"]]
            same = (str(data["weights_sha256"]) == weights_sha256
                    and int(data["working_size"]) == working_size)
            desc = data["descriptors"].astype(np.float32)
    except (OSError, ValueError, KeyError):
        return None
    if not same or names != [p.name for p in files]:
        return None
    return GalleryIndex(files, desc / np.linalg.norm(desc, axis=1, keepdims=True), cached=True)


def write_shipped_index(index: GalleryIndex, weights_sha256: str, working_size: int) -> Path:
    """Store a default-gallery index beside its photos (float16 descriptors, file names)."""
    import io

    from ...files import write_bytes_atomic

    buf = io.BytesIO()
    np.savez_compressed(buf, files=np.array([p.name for p in index.files]),
                        descriptors=index.descriptors.astype(np.float16),
                        weights_sha256=np.array(weights_sha256),
                        working_size=np.array(working_size))
    path = DEFAULT_GALLERY / SHIPPED_INDEX
    write_bytes_atomic(path, buf.getvalue(), overwrite=True)
    return path


def check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k must be an integer >= 1 (references fused per image); got {k!r}")
    return k


def check_threshold(threshold: Any) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"threshold must be a number in [0, 1) (the correspondence "
                         f"similarity below which chroma fades to gray); got {threshold!r}"
                         ) from None
    if not 0.0 <= value < 1.0:
        raise InputError(f"threshold must be in [0, 1); got {threshold!r}")
    return value
