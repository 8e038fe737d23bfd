"""The weights cache: published weights downloaded on first use, verified, kept as safetensors.

Where: ``$COLORPLUG_CACHE/weights``, else ``platformdirs.user_cache_dir("colorplug")/weights``.
A download goes through pooch with `GuardedDownloader` (an overall deadline,
``COLORPLUG_DOWNLOAD_TIMEOUT``; a size cap, the spec's ``size`` when known; the SHA-256 or
its prefix checked before the file is kept) into a private staging folder inside the cache,
and is renamed into place only when complete and verified: a failed, interrupted or
mismatching download leaves nothing behind. Pickled ``.pth`` files are read once with
``torch.load(weights_only=True)`` and converted to ``.safetensors``; the converted file's
own SHA-256 is written beside it (``FILE.sha256``) and checked on every load.
``COLORPLUG_WEIGHTS_MIRROR=BASE`` fetches ``BASE/FILENAME`` instead of the published URL;
``COLORPLUG_OFFLINE=1`` never touches the network (`import_file` fills the cache instead).
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import shutil
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import WeightsError
from .files import (clean_stale_parts, is_stale_temporary, temporary_folder_beside,
                    temporary_name, write_bytes_atomic)
from .weights import (META_KEY, MANIFEST, SHIPPED_DIR, ResolvedWeights, WeightsSpec,
                      check_finite, check_url, parse_sha256, read_torch_state, sha256_file,
                      sha256_matches)

#: Overall time a download may take unless COLORPLUG_DOWNLOAD_TIMEOUT or `timeout=` says.
DEFAULT_TIMEOUT = 3600.0
#: Size cap for a download whose size is not declared (a spec's `size` is its own cap).
DEFAULT_MAX_BYTES = 2 * 1024 ** 3
#: Licence of the weights shipped inside colorplug (trained by the project).
SHIPPED_LICENSE = "MIT"

_TRUE = {"1", "true", "yes", "on"}


# ------------------------------------------------------------------------ settings
def cache_dir() -> Path:
    """``$COLORPLUG_CACHE``, else the user cache folder (platformdirs), for colorplug."""
    custom = os.environ.get("COLORPLUG_CACHE")
    if custom:
        return Path(custom).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("colorplug"))


def weights_dir() -> Path:
    """Where downloaded and imported weights are kept."""
    return cache_dir() / "weights"


def offline() -> bool:
    """``COLORPLUG_OFFLINE=1``: never touch the network."""
    return os.environ.get("COLORPLUG_OFFLINE", "").strip().lower() in _TRUE


def download_timeout(timeout: float | None = None) -> float:
    """The overall download deadline in seconds: `timeout`, COLORPLUG_DOWNLOAD_TIMEOUT or
    `DEFAULT_TIMEOUT`."""
    if timeout is None:
        text = os.environ.get("COLORPLUG_DOWNLOAD_TIMEOUT", "").strip()
        if not text:
            return DEFAULT_TIMEOUT
        try:
            timeout = float(text)
        except ValueError:
            raise WeightsError(f"COLORPLUG_DOWNLOAD_TIMEOUT={text!r} must be a number of "
                               "seconds") from None
    if not timeout > 0 or timeout != timeout or timeout == float("inf"):
        raise WeightsError(f"the download timeout must be a positive number of seconds; "
                           f"got {timeout!r}")
    return float(timeout)


def source_url(url: str, filename: str) -> str:
    """The URL to fetch: ``$COLORPLUG_WEIGHTS_MIRROR/filename`` when a mirror is set."""
    mirror = os.environ.get("COLORPLUG_WEIGHTS_MIRROR", "").strip()
    if not mirror:
        return url
    try:
        check_url(mirror)
    except WeightsError as exc:
        raise WeightsError(f"COLORPLUG_WEIGHTS_MIRROR: {exc}") from None
    return mirror.rstrip("/") + "/" + urllib.parse.quote(filename)


# ------------------------------------------------------------------------ layout
def cached_path(spec: WeightsSpec) -> Path:
    """Where `spec`'s verified ``.safetensors`` is (or will be) in the cache."""
    sha = spec.validate().checked_sha256()
    key = sha[:8] if sha else "nosha"
    if spec.source_format == "pth":
        return weights_dir() / f"{key}-{Path(spec.filename).stem}.safetensors"
    return weights_dir() / f"{key}-{spec.filename}"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_cached(spec: WeightsSpec) -> bool:
    """Whether `spec` is in the cache (cheap: no hashing; loading checks the SHA-256)."""
    path = cached_path(spec)
    if not path.is_file():
        return False
    if spec.source_format == "pth":
        return _sidecar(path).is_file()
    return spec.size is None or path.stat().st_size == spec.size


_verified: dict[tuple[str, int, int, int], str] = {}


def _digest(path: Path) -> str:
    """SHA-256 of `path`, remembered while the file's size, mtime and inode stay the same."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _verified:
        _verified[key] = sha256_file(path)
    return _verified[key]


def _expected_of(spec: WeightsSpec, path: Path) -> str:
    """The SHA-256 the cached file must have: the spec's, or for a converted ``.pth`` the
    one recorded beside it at conversion."""
    if spec.source_format != "pth":
        return spec.checked_sha256() or ""
    words = _sidecar(path).read_text(errors="replace").split()
    return parse_sha256(words[0] if words else "", where=f"checksum file {str(_sidecar(path))!r}")


def verified(spec: WeightsSpec) -> ResolvedWeights | None:
    """The cache entry of `spec` after checking its SHA-256, or None (no network)."""
    return _cached(spec.validate())


def _cached(spec: WeightsSpec) -> ResolvedWeights | None:
    """The verified cache entry of `spec`, or None; a corrupt entry is removed (warned)."""
    if not is_cached(spec):
        return None
    path = cached_path(spec)
    try:
        expected = _expected_of(spec, path)
        ok = sha256_matches(_digest(path), expected)
    except (WeightsError, OSError):
        expected, ok = "", False
    if ok:
        return ResolvedWeights(path, expected)
    warnings.warn(f"cached weights {str(path)!r} ({spec.public_name}) were corrupt or "
                  "modified and were removed; they are fetched again", RuntimeWarning,
                  stacklevel=3)
    for p in (path, _sidecar(path)):
        p.unlink(missing_ok=True)
    return None


# ------------------------------------------------------------------------ consent
#: Whether a download may start now: True, False, or a callable asked with the spec (the
#: CLI's prompt on a terminal). `colorplug.get` sets it for the backend it builds (False
#: unless the user said download=True / --download / yes at the prompt); code that calls
#: `colorplug.weights.resolve` or `fetch` itself has asked for the file and may download.
_DOWNLOAD_CONSENT: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "colorplug_download_consent", default=True)


#: What `colorplug.get` uses when its caller does not say: False, unless a host (the CLI's
#: --download or its prompt) answered for the whole command with `downloads_asked`.
_ASKED_CONSENT: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "colorplug_asked_download", default=False)


@contextlib.contextmanager
def download_consent(consent: bool | Callable[[WeightsSpec], bool] | None) -> Iterator[None]:
    """Within the block, weights not yet cached are downloaded only with `consent` (True,
    or a callable that answers for a given spec; None: what `downloads_asked` set, else
    no)."""
    token = _DOWNLOAD_CONSENT.set(_ASKED_CONSENT.get() if consent is None else consent)
    try:
        yield
    finally:
        _DOWNLOAD_CONSENT.reset(token)


@contextlib.contextmanager
def downloads_asked(consent: bool | Callable[[WeightsSpec], bool]) -> Iterator[None]:
    """A host's answer for everything it builds within the block (`colorplug.get` calls
    that do not pass `download` themselves)."""
    token = _ASKED_CONSENT.set(consent)
    try:
        yield
    finally:
        _ASKED_CONSENT.reset(token)


def describe_size(size: int | None) -> str:
    """A byte count for people: '912 MB'; 'size unknown' when the spec gives none."""
    if size is None:
        return "size unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.0f} {unit}" if size >= 10 * scale else \
                f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _consent_error(spec: WeightsSpec, registered: bool = True) -> WeightsError:
    sha = spec.checked_sha256()
    kind = "SHA-256 prefix" if spec.sha256_is_prefix and sha and len(sha) < 64 else "SHA-256"
    licence = f", {spec.license}" if spec.license else ""
    offline = (f"colorplug weights import {spec.public_name} FILE" if registered
               else "pass the downloaded file's path as weights=PATH")
    return WeightsError(
        f"weights {spec.public_name!r} ({describe_size(spec.size)}{licence}) are not in the "
        f"cache and colorplug downloads only when asked: run `colorplug weights fetch "
        f"{spec.public_name}`, or colorize with --download (API: colorplug.get(..., "
        f"download=True)). Source: {spec.url} ({kind} {sha}). Offline: download it "
        f"elsewhere, then `{offline}`")


def _offline_error(spec: WeightsSpec, registered: bool = True) -> WeightsError:
    sha = spec.checked_sha256()
    kind = "SHA-256 prefix" if spec.sha256_is_prefix and sha and len(sha) < 64 else "SHA-256"
    then = (f"run: colorplug weights import {spec.public_name} {spec.filename}" if registered
            else "pass its path as weights=PATH")
    return WeightsError(
        f"weights {spec.public_name!r} ({spec.filename}) are not in the cache "
        f"{str(weights_dir())!r} and COLORPLUG_OFFLINE=1 forbids downloading them. On a "
        f"machine with internet download {spec.url} ({kind} {sha}), bring the file here "
        f"and {then}")


# ------------------------------------------------------------------------ staging
def _clean_stale(folder: Path) -> None:
    """Remove temporaries and staging folders of killed runs from the weights cache. Only
    in this folder, which is colorplug's own, does cleanup remove folders, and only those
    provably made by colorplug (see `colorplug.files.is_stale_temporary`)."""
    clean_stale_parts([folder])
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.endswith("~download.part") and _stale_staging(entry):
                shutil.rmtree(entry, ignore_errors=True)


def _stale_staging(entry: Path) -> bool:
    """A staging folder of a killed colorplug download: judged as a temporary file would
    be, on a marker file colorplug writes into each staging folder."""
    if entry.is_symlink() or not entry.is_dir():
        return False
    marker = entry / entry.name
    return marker.is_file() and not marker.is_symlink() and is_stale_temporary(marker)


@contextlib.contextmanager
def _staging() -> Iterator[Path]:
    """A private folder inside the cache, removed with everything in it on exit."""
    folder = weights_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _clean_stale(folder)
        staging = temporary_folder_beside(folder / "download")
        (staging / staging.name).touch()  # the marker `_stale_staging` checks
    except OSError as exc:
        raise WeightsError(f"cannot write the weights cache {str(folder)!r}: "
                           f"{exc.strerror or exc}; set COLORPLUG_CACHE to a writable "
                           "folder") from None
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs each download at INFO; colorplug shows its own progress bar instead."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _place(src: Path, spec: WeightsSpec, source_sha: str) -> ResolvedWeights:
    """Move (safetensors) or convert (pth) a verified file from staging into the cache."""
    target = cached_path(spec)
    if spec.source_format == "pth":
        digest = convert_pth(src, target, spec, source_sha256=source_sha)
        return ResolvedWeights(target, digest)
    os.replace(src, target)
    return ResolvedWeights(target, spec.checked_sha256())


# ------------------------------------------------------------------------ conversion
def convert_pth(src: str | os.PathLike, target: str | os.PathLike, spec: WeightsSpec, *,
                source_sha256: str) -> str:
    """Read a pickled torch file with ``weights_only=True``, take ``spec.state_key``, and
    write it as ``.safetensors`` plus a ``.sha256`` sidecar (atomically); return its SHA-256."""
    from safetensors.torch import save_file

    import torch

    src, target = Path(src), Path(target)
    what = f"weights {spec.public_name!r}"
    state: Any = read_torch_state(src, what)
    if spec.state_key is not None:
        if spec.state_key not in state:
            keys = ", ".join(sorted(map(str, state))[:5]) or "none"
            raise WeightsError(f"{what} ({src.name}) hold no {spec.state_key!r} entry "
                               f"(top-level keys: {keys}); not the published file?")
        state = state[spec.state_key]
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise WeightsError(f"{what} ({src.name}): {spec.state_key!r} is not a state dict")
    others = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if others:
        raise WeightsError(f"{what} ({src.name}) hold entries that are not tensors: "
                           f"{', '.join(others[:5])}; set the spec's state_key to the state "
                           "dict inside the file")
    check_finite(state, source=f"{what} ({src.name})")
    tensors, seen = {}, set()
    for k, v in state.items():
        v = v.detach().cpu().contiguous()
        ptr = v.untyped_storage().data_ptr()
        if ptr in seen and v.numel():
            v = v.clone()  # safetensors refuses tensors that share memory (tied weights)
        seen.add(ptr)
        tensors[k] = v
    meta = {"name": spec.public_name, "converted_from": spec.filename, "source_url": spec.url,
            "source_sha256": source_sha256, "state_key": spec.state_key}
    tmp = str(target.parent / temporary_name(target.name))
    try:
        try:
            save_file(tensors, tmp, metadata={META_KEY: json.dumps(meta)})
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise WeightsError(f"{what} ({src.name}) cannot be converted to .safetensors: "
                               f"{exc}") from None
        digest = sha256_file(tmp)
        write_bytes_atomic(_sidecar(target), f"{digest}  {target.name}\n".encode(),
                           overwrite=True)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return digest


# ------------------------------------------------------------------------ public API
def fetch(spec: WeightsSpec, *, timeout: float | None = None, max_bytes: int | None = None,
          progress: bool | None = None, _registered: bool = True) -> ResolvedWeights:
    """The verified cache entry of a downloadable `spec`, downloading (and converting) it on
    first use. `timeout`: overall deadline in seconds (default COLORPLUG_DOWNLOAD_TIMEOUT or
    one hour); `max_bytes`: cap when the spec has no `size`; `progress`: tqdm bar (None: when
    stderr is a terminal). Returns the ``.safetensors`` path and the SHA-256 to check on load."""
    spec.validate()
    if not spec.url:
        raise WeightsError(f"weights {spec.public_name!r} have no URL to download them from")
    found = _cached(spec)
    if found is not None:
        return found
    if offline():
        raise _offline_error(spec, _registered)
    consent = _DOWNLOAD_CONSENT.get()
    if callable(consent):
        consent = consent(spec)
    if not consent:
        raise _consent_error(spec, _registered)
    url = source_url(spec.url, spec.filename)
    sha = spec.checked_sha256() or ""
    deadline = download_timeout(timeout)
    cap = int(max_bytes) if max_bytes is not None else DEFAULT_MAX_BYTES
    with _staging() as staging:
        from .download import GuardedDownloader

        downloader = GuardedDownloader(deadline=deadline, max_bytes=cap, sha256=sha,
                                       exact_size=spec.size, progress=progress,
                                       label=spec.public_name)
        try:
            import pooch

            with _quiet_pooch():
                got = Path(pooch.retrieve(url, known_hash=None, fname=spec.filename,
                                          path=staging, downloader=downloader))
        except WeightsError as exc:
            if url != spec.url:
                raise WeightsError(f"{exc} (from COLORPLUG_WEIGHTS_MIRROR; published at "
                                   f"{spec.url})") from None
            raise
        except OSError as exc:
            raise WeightsError(f"cannot download {spec.public_name!r} from {url} into the "
                               f"cache {str(weights_dir())!r}: {exc.strerror or exc}") from None
        return _place(got, spec, _digest(got))


def download_url(url: str, sha256: str, *, size: int | None = None,
                 timeout: float | None = None, max_bytes: int | None = None,
                 progress: bool | None = None) -> Path:
    """Fetch a ``weights=URL#sha256=HEX`` file into the cache (once); its path."""
    parts = check_url(url)
    name = Path(urllib.parse.unquote(parts.path)).name or "weights.safetensors"
    spec = WeightsSpec(filename=name, sha256=sha256, url=url, size=size,
                       name=_plain_name(name))
    return fetch(spec, timeout=timeout, max_bytes=max_bytes, progress=progress,
                 _registered=False).path


def _plain_name(filename: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(filename).stem.lower())
    return stem.lstrip("-_.") or "weights"


def import_file(spec: WeightsSpec, file: str | os.PathLike) -> ResolvedWeights:
    """Put a file the user brought (an offline workstation) into the cache: its SHA-256
    must be the spec's; a ``.pth`` is converted. No network."""
    spec.validate()
    file = Path(file).expanduser()
    if not file.is_file():
        raise WeightsError(f"cannot import {spec.public_name!r}: no such file {str(file)!r}")
    if spec.size is not None and file.stat().st_size != spec.size:
        raise WeightsError(f"{str(file)!r} has {file.stat().st_size} bytes; "
                           f"{spec.public_name!r} ({spec.filename}) has {spec.size}: not the "
                           "published file (incomplete download?); nothing was imported")
    got = sha256_file(file)
    expected = spec.checked_sha256()
    if expected and not sha256_matches(got, expected):
        raise WeightsError(f"{str(file)!r} has sha256 {got}, but {spec.public_name!r} "
                           f"({spec.filename}) has {expected}: not the published file; "
                           "nothing was imported")
    with _staging() as staging:
        if spec.source_format == "pth":
            return _place(file, spec, got)
        copy = staging / spec.filename
        shutil.copyfile(file, copy)
        if not sha256_matches(sha256_file(copy), got):
            raise WeightsError(f"{str(file)!r} changed while it was imported; try again")
        return _place(copy, spec, got)


# ------------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class WeightsListing:
    """One line of `colorplug weights list`."""

    spec: WeightsSpec
    origin: str  # the distribution declaring it, or "colorplug (shipped)"
    shipped: bool


def shipped_specs() -> list[WeightsSpec]:
    """The weights inside colorplug's package, from its manifest."""
    manifest = SHIPPED_DIR / MANIFEST
    entries = json.loads(manifest.read_text()) if manifest.is_file() else {}
    return [WeightsSpec(filename=f, sha256=e.get("sha256"), size=e.get("size"),
                        license=SHIPPED_LICENSE, description="shipped with colorplug")
            for f, e in sorted(entries.items()) if isinstance(e, dict)]


def listing() -> list[WeightsListing]:
    """Shipped weights, then every plugin's declared weights (sorted by name)."""
    from .registry import default_registry

    rows = [WeightsListing(s, "colorplug (shipped)", True) for s in shipped_specs()]
    rows += [WeightsListing(e.spec, e.distribution, False)
             for e in default_registry().weights_entries()]
    return rows


def registered_spec(name: str, *, missing_ok: bool = False) -> WeightsSpec | None:
    """The weights called `name` (shipped or declared by a plugin), or those of the backend
    called `name` (``colorplug weights fetch ddcolor``: one name per model)."""
    from .registry import default_registry

    for spec in shipped_specs():
        if spec.public_name == name:
            return spec
    reg = default_registry()
    if name not in reg.weights_names():
        backends = {entry.name: entry for entry in reg.entries()}
        own = backends[name].info.extra.get("weights") if name in backends else None
        if isinstance(own, str) and own in reg.weights_names():
            return reg.weights_entry(own).spec
        if missing_ok:
            return None
    return reg.weights_entry(name).spec


def local_path(spec: WeightsSpec, shipped: bool) -> Path | None:
    """Where the file is now (shipped folder or cache), None when not cached."""
    if shipped:
        from .weights import find_weights_file

        try:
            return find_weights_file(spec.filename)
        except WeightsError:
            return None
    return cached_path(spec) if is_cached(spec) else None
