"""Finding image files in the folders users give (the files given, plus images found
recursively in folders)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from .codecs import IMAGE_SUFFIXES


def find_images(paths: Sequence[str | os.PathLike] | str | os.PathLike,
                suffixes: Iterable[str] | None = None) -> list[Path]:
    """Files given, plus image files found recursively in folders given, sorted."""
    if suffixes is None:
        suffixes = IMAGE_SUFFIXES
    wanted = {s.lower() for s in suffixes}
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*")
                                if f.is_file() and f.suffix.lower() in wanted))
        else:
            found.append(p)
    return found
