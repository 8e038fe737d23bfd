"""The user's own weights (fine-tuned with ``colorplug train --name``), kept by name.

Where: ``platformdirs.user_data_dir("colorplug")/weights`` (data, not cache: nothing here
can be downloaded again). Each entry is three files: ``NAME.safetensors``, its SHA-256
sidecar ``NAME.safetensors.sha256`` (checked on every load, like shipped weights) and
``NAME.json``, the model card written at training time (base weights, data, steps, time,
val numbers). ``weights="NAME"`` (API), ``-b "fusion?weights=NAME"`` (CLI), the napari and
GIMP choosers and ``colorplug weights list`` (marked "yours") all find them.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import WeightsError
from .files import write_bytes_atomic
from .weights import NAME_RE, read_metadata, sha256_file, user_weights_dir

SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"


@dataclass(frozen=True)
class UserWeights:
    """One entry of the user's registry: where its file is, what it is for, its card."""

    name: str
    path: Path
    backend: str
    card: dict[str, Any]

    @property
    def card_path(self) -> Path:
        return self.path.with_suffix(CARD_SUFFIX)

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def check_name(name: str, *, flag: str = "--name") -> str:
    """A registry name: lowercase letters, digits, '-', '_', '.'; else a WeightsError."""
    if name == "default":
        raise WeightsError(f"{flag} default: 'default' means the backend's shipped weights; "
                           "choose another name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or len(name) > 100:
        raise WeightsError(f"{flag} {name!r}: a weights name must start with a lowercase letter "
                           "or digit and hold only lowercase letters, digits, '-', '_' and '.'")
    return name


def find(name: str) -> UserWeights | None:
    """The user's weights called `name`, or None."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        return None
    path = user_weights_dir() / f"{name}{SUFFIX}"
    if not path.is_file():
        return None
    return _entry(path)


def _entry(path: Path) -> UserWeights:
    card_path = path.with_suffix(CARD_SUFFIX)
    try:
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    except (OSError, ValueError, RecursionError):
        card = {}
    if not isinstance(card, dict):
        card = {}
    backend = card.get("backend")
    if not isinstance(backend, str) or not backend:
        try:
            backend = str(read_metadata(path).get("backend") or "?")
        except WeightsError:  # a broken file is listed, and refused when loaded
            backend = "?"
    return UserWeights(path.name[:-len(SUFFIX)], path, backend, card)


def listing() -> list[UserWeights]:
    """Every entry of the user's registry, by name."""
    folder = user_weights_dir()
    if not folder.is_dir():
        return []
    return [_entry(p) for p in sorted(folder.glob(f"*{SUFFIX}"))
            if p.is_file() and NAME_RE.fullmatch(p.name[:-len(SUFFIX)])]


def taken_by_others(name: str) -> str | None:
    """Who else answers to `name` (shipped or a plugin's weights), so a user's name never
    shadows them or is shadowed; None when free."""
    from .cache import registered_spec

    try:
        spec = registered_spec(name, missing_ok=True)
    except WeightsError:
        spec = None
    return None if spec is None else f"weights {name!r} already exist (shipped or a plugin's)"


def store(name: str, weights_file: str | os.PathLike, card: dict[str, Any], *,
          overwrite: bool = False) -> UserWeights:
    """Copy a trained weights file into the registry under `name`, with its card."""
    check_name(name)
    clash = taken_by_others(name)
    if clash:
        raise WeightsError(f"--name {name}: {clash}; choose another name")
    folder = user_weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}{SUFFIX}"
    if target.exists() and not overwrite:
        raise WeightsError(f"your weights {name!r} exist ({target}); choose another name, or "
                           f"`colorplug weights remove {name}` first")
    data = Path(weights_file).read_bytes()
    meta = read_metadata(weights_file)
    if not meta.get("backend"):
        raise WeightsError(f"{str(weights_file)!r} carries no colorplug metadata (which backend "
                           "it is for); only weights written by colorplug can be registered")
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    card = {**card, "name": name, "backend": meta["backend"], "sha256": digest}
    write_bytes_atomic(target, data, overwrite=True)
    write_bytes_atomic(target.with_name(target.name + ".sha256"),
                       f"{digest}  {target.name}\n".encode(), overwrite=True)
    write_bytes_atomic(target.with_suffix(CARD_SUFFIX),
                       (json.dumps(card, indent=2, default=str) + "\n").encode(), overwrite=True)
    return _entry(target)


def get_entry(name: str) -> UserWeights:
    """The user's weights called `name`, else a WeightsError listing what there is."""
    found = find(name)
    if found is None:
        have = ", ".join(e.name for e in listing()) or "none yet"
        raise WeightsError(f"no weights of yours called {name!r} (yours: {have}); "
                           "`colorplug train BACKEND --from default --data DIR --name NAME` "
                           "makes some")
    return found


def remove(name: str) -> Path:
    """Delete the user's weights `name` (its file, sidecar and card); returns the path."""
    entry = get_entry(name)
    for p in (entry.path.with_name(entry.path.name + ".sha256"), entry.card_path, entry.path):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    return entry.path


def export(name: str, file: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the user's weights `name` to `file` (with its sidecar and card beside it),
    verified against its checksum first; none of the three replaces a file unasked."""
    from .weights import ResolvedWeights, expected_sha256, load_file

    entry = get_entry(name)
    target = Path(file)
    if target.suffix != SUFFIX:
        raise WeightsError(f"export to {str(file)!r}: the file name must end in {SUFFIX}")
    sidecar = target.with_name(target.name + ".sha256")
    card_path = target.with_suffix(CARD_SUFFIX)
    taken = [p for p in (target, sidecar, card_path) if p.exists()]
    if taken and not overwrite:
        raise WeightsError(f"{', '.join(map(str, taken))} already exist; pass --overwrite to "
                           "replace them")
    load_file(ResolvedWeights(entry.path, expected_sha256(entry.path)))  # not corrupted
    data = entry.path.read_bytes()
    write_bytes_atomic(target, data, overwrite=overwrite)
    digest = sha256_file(target)
    write_bytes_atomic(sidecar, f"{digest}  {target.name}\n".encode(), overwrite=overwrite)
    write_bytes_atomic(card_path, (json.dumps(entry.card, indent=2, default=str) + "\n").encode(),
                       overwrite=overwrite)
    return target


def import_file(file: str | os.PathLike, name: str) -> UserWeights:
    """Register a weights file made by colorplug elsewhere (its sidecar checked if present)."""
    from .weights import ResolvedWeights, expected_sha256, load_file

    path = Path(file)
    if not path.is_file():
        raise WeightsError(f"cannot import {str(file)!r}: no such file")
    load_file(ResolvedWeights(path, expected_sha256(path)))  # verified, finite, readable
    card_path = path.with_suffix(CARD_SUFFIX)
    card: dict[str, Any] = {}
    if card_path.is_file():
        try:
            loaded = json.loads(card_path.read_text())
            card = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError, RecursionError):
            card = {}
    card = {**card, "imported_from": str(path.resolve())}
    card.pop("name", None)
    card.pop("sha256", None)
    return store(name, path, card)
