"""Finding, verifying, loading and saving model weights (``.safetensors`` + SHA-256).

Shipped weights live in ``colorplug/weights/`` with ``manifest.json`` listing each file's
SHA-256; every load checks it. ``COLORPLUG_WEIGHTS_DIR`` is searched before the shipped
folder (its own ``manifest.json`` or ``FILE.sha256`` sidecars are checked the same way).
``weights=`` also takes a path (checked when a manifest or sidecar names it), a URL with
its checksum (``https://host/file.safetensors#sha256=HEX``), a `WeightsSpec` with a URL (a
plugin's published weights), the name of registered weights (``colorplug weights list``) or
a backend's weights enum member. Downloads go through the cache (`colorplug.cache`).
Loading into a model is strict: missing, unexpected or mis-shaped tensors are an error.
"""
from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import struct
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import WeightsError

SHIPPED_DIR = Path(__file__).resolve().parent / "weights"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
MANIFEST = "manifest.json"
META_KEY = "colorplug"


#: How a downloadable file is published: ready ``.safetensors``, or a pickled torch ``.pth``
#: (read with ``weights_only=True`` and converted once to ``.safetensors`` in the cache).
SOURCE_FORMATS = ("safetensors", "pth")


@dataclass(frozen=True)
class WeightsSpec:
    """A named weights file: shipped (``filename``) or downloadable (``url`` + ``sha256``).

    A downloadable spec is fetched into the cache on first use (`colorplug.cache`);
    ``name`` is what users type (``colorplug weights fetch NAME``), ``filename`` the file's
    name in the cache and on a mirror (``$COLORPLUG_WEIGHTS_MIRROR/FILENAME``).
    """

    filename: str
    sha256: str | None = None
    url: str | None = None
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: `sha256` is only a prefix (at least 8 hex digits), as in torch.hub file names.
    sha256_is_prefix: bool = False
    #: the public name users type; defaults to the file name without its suffix
    name: str = ""
    #: the file's size in bytes when known: downloads stop at the first byte beyond it
    size: int | None = None
    #: licence of the weights (SPDX identifier where there is one), shown by `weights list`
    license: str = ""
    #: "safetensors" or "pth" (pickled torch file, converted once in the cache)
    source_format: str = "safetensors"
    #: a ``.pth`` holding ``{state_key: state_dict}`` (DDColor: ``"params"``); None: the
    #: file is the state dict itself
    state_key: str | None = None

    @property
    def public_name(self) -> str:
        """The name users type: `name`, else the file name without its suffix."""
        return self.name or Path(self.filename).stem

    def checked_sha256(self) -> str | None:
        """`sha256` parsed (64 hex digits, or a prefix where `sha256_is_prefix`)."""
        if not self.sha256:
            return None
        return parse_sha256(self.sha256, prefix_ok=self.sha256_is_prefix,
                            where=f"weights spec {self.public_name!r}")

    def validate(self) -> "WeightsSpec":
        """Raise a WeightsError naming what is wrong with a downloadable spec."""
        where = f"weights spec {self.public_name!r}"
        if not isinstance(self.filename, str) or not self.filename or \
                Path(self.filename).name != self.filename or self.filename.startswith("."):
            raise WeightsError(f"{where}: filename {self.filename!r} must be a plain file name")
        if not NAME_RE.match(self.public_name):
            raise WeightsError(f"{where}: the name must be lowercase letters, digits, '-', "
                               "'_' and '.'")
        if self.source_format not in SOURCE_FORMATS:
            raise WeightsError(f"{where}: source_format {self.source_format!r} is not one of "
                               f"{', '.join(SOURCE_FORMATS)}")
        if self.state_key is not None and self.source_format != "pth":
            raise WeightsError(f"{where}: state_key applies to source_format='pth' only")
        if self.size is not None and (isinstance(self.size, bool) or
                                      not isinstance(self.size, int) or self.size <= 0):
            raise WeightsError(f"{where}: size must be a positive number of bytes")
        if self.url:
            if not self.sha256:
                raise WeightsError(f"weights URL {self.url} needs a sha256 to be trusted")
            check_url(self.url)
        self.checked_sha256()
        return self


class WeightsEnum(enum.Enum):
    """Base for per-backend weights enums, in the manner of torchvision's."""

    @property
    def spec(self) -> WeightsSpec:
        return self.value


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    sha256: str | None  # expected checksum, None when nothing names one


def cache_dir() -> Path:
    """colorplug's cache folder: ``$COLORPLUG_CACHE``, else the user cache dir (platformdirs)."""
    from .cache import cache_dir as _cache_dir

    return _cache_dir()


def _check_readable(path: str | os.PathLike) -> None:
    from .files import regular_file_problem

    problem = regular_file_problem(path)
    if problem is not None:
        raise WeightsError(f"cannot read weights {str(path)!r}: {problem}")


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a regular file, read in blocks."""
    _check_readable(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_HEX = set("0123456789abcdef")


def parse_sha256(text: Any, *, prefix_ok: bool = False, where: str = "checksum") -> str:
    """A SHA-256 as 64 lowercase hex digits, or a prefix of at least 8 where `prefix_ok`."""
    value = str(text).strip().lower() if isinstance(text, str) else ""
    if value and set(value) <= _HEX and (len(value) == 64 or (prefix_ok and 8 <= len(value) < 64)):
        return value
    need = "64 hex digits" + (" (or a prefix of at least 8)" if prefix_ok else "")
    raise WeightsError(f"{where}: {text!r} is not a SHA-256; it must be {need}")


def sha256_matches(digest: str, expected: str) -> bool:
    """Full digests must be equal; a shorter `expected` (a checked prefix) must start it."""
    return digest.startswith(expected) if len(expected) < 64 else digest == expected


def _json_problem(exc: BaseException) -> str:
    """What went wrong reading JSON, in words (RecursionError says nothing useful)."""
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _manifest_entries(manifest: Path) -> dict[str, Any]:
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise WeightsError(f"cannot read weights manifest {str(manifest)!r}: "
                           f"{_json_problem(exc)}") from None
    if not isinstance(entries, dict):
        raise WeightsError(f"weights manifest {str(manifest)!r} must be a JSON object mapping "
                           f"file names to {{\"sha256\": ...}}; got a {type(entries).__name__}")
    return entries


def _manifest_sha(manifest: Path, filename: str) -> str | None:
    if not manifest.is_file():
        return None
    entry = _manifest_entries(manifest).get(filename)
    if entry is None:
        return None
    where = f"weights manifest {str(manifest)!r}, entry {filename!r}"
    if isinstance(entry, dict):
        if "sha256" not in entry:
            raise WeightsError(f"{where} has no \"sha256\"")
        return parse_sha256(entry["sha256"], where=where)
    return parse_sha256(entry, where=where)


def expected_sha256(path: Path) -> str | None:
    """The checksum its folder's manifest or a ``FILE.sha256`` sidecar gives, if any."""
    found = _manifest_sha(path.parent / MANIFEST, path.name)
    if found:
        return found
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        words = sidecar.read_text(errors="replace").split()
        if not words:
            raise WeightsError(f"checksum file {str(sidecar)!r} is empty; it must hold the "
                               f"SHA-256 of {path.name}")
        return parse_sha256(words[0], where=f"checksum file {str(sidecar)!r}")
    return None


def user_weights_dir() -> Path:
    """Where the user's own weights live (`colorplug.user_weights`): the user data folder
    (platformdirs), not the cache, since nothing there can be downloaded again."""
    import platformdirs

    return Path(platformdirs.user_data_dir("colorplug")) / "weights"


def user_weights_file(name: str) -> Path | None:
    """The user's weights file called `name` (``colorplug train --name``), if it exists."""
    if not NAME_RE.fullmatch(name):
        return None
    path = user_weights_dir() / f"{name}.safetensors"
    return path if path.is_file() else None


def _weights_dirs() -> list[Path]:
    custom = os.environ.get("COLORPLUG_WEIGHTS_DIR")
    if custom:
        if not Path(custom).is_dir():
            raise WeightsError(f"COLORPLUG_WEIGHTS_DIR={custom} is not a folder; set it to the "
                               "folder holding your weights files, or unset it")
        return [Path(custom), SHIPPED_DIR]
    return [SHIPPED_DIR]


def find_weights_file(filename: str) -> Path:
    """The file of that name in the first of colorplug's weights folders that holds it."""
    dirs = _weights_dirs()
    for d in dirs:
        if (d / filename).exists():
            return d / filename
    raise WeightsError(f"weights file {filename!r} not found in {', '.join(map(str, dirs))}; "
                       "reinstall colorplug, set COLORPLUG_WEIGHTS_DIR, or pass weights=PATH")


def check_url(url: str) -> urllib.parse.ParseResult:
    """An http(s) or file URL, else a WeightsError naming it."""
    try:
        parts = urllib.parse.urlparse(url)
        if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.path):
            raise ValueError("not an http(s) or file URL")
        if parts.scheme != "file" and not parts.hostname:
            raise ValueError("no host")
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise WeightsError(f"malformed weights URL {url!r}: {exc}") from None
    return parts


def download(url: str, sha256: str, **options: Any) -> Path:
    """Fetch `url` into the cache (once), verifying its SHA-256; see `colorplug.cache`."""
    from .cache import download_url

    return download_url(url, sha256, **options)


def resolve(weights: Any, default: WeightsSpec | None) -> ResolvedWeights:
    """Turn a user's ``weights=`` value into a file path and its expected checksum."""
    if weights is None:
        if default is None:
            raise WeightsError("this backend has no shipped weights; pass weights=PATH")
        weights = default
    if isinstance(weights, WeightsEnum):
        weights = weights.spec
    if isinstance(weights, WeightsSpec):
        spec_sha = weights.checked_sha256()
        if weights.url:
            from .cache import fetch

            return fetch(weights)
        path = find_weights_file(weights.filename)
        # a file found under a shipped name is held to the shipped checksum unless its own
        # folder's manifest or sidecar names another
        expected = (expected_sha256(path) or _manifest_sha(SHIPPED_DIR / MANIFEST, path.name)
                    or spec_sha)
        return ResolvedWeights(path, expected)
    if isinstance(weights, str) and "://" in weights:
        url, _, frag = weights.partition("#")
        params = dict(urllib.parse.parse_qsl(frag))
        sha = params.get("sha256")
        if not sha:
            raise WeightsError(f"weights URL {url} needs its checksum: append #sha256=HEX "
                               "(64 hex digits)")
        sha = parse_sha256(sha, where=f"weights URL {url}")
        size = params.get("size")
        if size is not None and not (size.isdigit() and int(size) > 0):
            raise WeightsError(f"weights URL {url}: size={size!r} must be a number of bytes")
        return ResolvedWeights(download(url, sha, size=int(size) if size else None), sha)
    if isinstance(weights, str) and not Path(weights).expanduser().is_file():
        from .cache import registered_spec

        spec = registered_spec(weights, missing_ok=True)
        if spec is not None:  # a name from `colorplug weights list`
            return resolve(spec, None)
        own = user_weights_file(weights)
        if own is not None:  # the user's own, from `colorplug train --name`
            sha = expected_sha256(own)
            if sha is None:
                raise WeightsError(f"your weights {weights!r} ({own}) lack their checksum file "
                                   f"{own.name}.sha256; register them again with `colorplug "
                                   f"weights import FILE --name {weights}`")
            return ResolvedWeights(own, sha)
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.exists():
            raise WeightsError(f"weights file not found: {str(path)!r}")
        return ResolvedWeights(path, expected_sha256(path))
    raise WeightsError(f"weights must be None, a path, a URL or a weights enum member; "
                       f"got {type(weights).__name__}")


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The colorplug metadata stored in a .safetensors header (empty dict if none)."""
    path = Path(path)
    _check_readable(path)
    try:
        with open(path, "rb") as fh:
            raw_len = fh.read(8)
            if len(raw_len) != 8:
                raise ValueError("file shorter than a safetensors header")
            (n,) = struct.unpack("<Q", raw_len)
            if n > 100_000_000:
                raise ValueError("implausible header size")
            header = json.loads(fh.read(n))
    except (OSError, ValueError, RecursionError) as exc:
        raise WeightsError(f"cannot read weights {str(path)!r}: truncated or corrupt .safetensors file "
                           f"({_json_problem(exc)})") from None
    meta = (header.get("__metadata__", {}) or {}) if isinstance(header, dict) else {}
    if META_KEY not in meta:
        return {}
    try:
        parsed = json.loads(meta[META_KEY])
    except (TypeError, ValueError, RecursionError) as exc:
        raise WeightsError(f"weights {str(path)!r} carry broken colorplug metadata (not JSON: "
                           f"{_json_problem(exc)})") from None
    if not isinstance(parsed, dict):
        raise WeightsError(f"weights {str(path)!r} carry broken colorplug metadata (a JSON "
                           f"{type(parsed).__name__}, not an object)")
    return parsed


def load_file(resolved: ResolvedWeights) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify and read a weights file -> (state_dict, metadata)."""
    from safetensors.torch import load

    path = resolved.path
    _check_readable(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read weights {str(path)!r}: {exc}") from None
    if resolved.sha256:
        got = hashlib.sha256(data).hexdigest()
        if not sha256_matches(got, resolved.sha256.lower()):
            raise WeightsError(f"weights file {str(path)!r} is corrupt or was modified: sha256 "
                               f"{got[:16]}..., expected {resolved.sha256[:16]}...")
    meta = read_metadata(path)
    try:
        state = load(data)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise WeightsError(f"cannot read weights {str(path)!r}: truncated or corrupt "
                           f".safetensors file ({exc})") from None
    check_finite(state, source=repr(str(path)))
    return state, meta


def check_finite(state: Mapping[str, Any], *, source: str) -> None:
    """Every floating tensor must be finite: NaN or inf weights would make black images."""
    import torch

    bad = [k for k, v in state.items()
           if isinstance(v, torch.Tensor) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"weights {source} hold NaN or infinite values in "
                           f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; the file is "
                           "corrupt or came from a diverged training run")


def load_into(model: Any, state: Mapping[str, Any], *, source: str) -> None:
    """Strict load: every key must match in name and shape, else a WeightsError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}"
                         f"{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:3]))
        raise WeightsError(f"weights {source} do not fit this model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def load_model(weights: Any, default: WeightsSpec | None, build: Callable[[dict], Any],
               device: Any, *, backend: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The backends' one way to get a network: resolve `weights` (None = `default`), check
    the SHA-256 and finiteness, build the model from the file's `config` metadata, load
    strictly, eval() on `device`. Returns (model, metadata); the metadata's
    ``weights_file`` names the file read. Weights made for another `backend` are refused."""
    resolved = resolve(weights, default)
    state, meta = load_file(resolved)
    source = repr(str(resolved.path))
    made_for = meta.get("backend")
    if backend and made_for and made_for != backend:
        raise WeightsError(f"weights {source} were trained for the {made_for!r} backend, not "
                           f"{backend!r}; use them with --backend {made_for}")
    config = meta.get("config", {})
    if not isinstance(config, dict):
        raise WeightsError(f"weights {source}: metadata 'config' must be an object")
    _check_config_fits(build, config, state, source)
    try:
        model = build(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise WeightsError(f"weights {source} hold a configuration this {backend or ''} model "
                           f"does not take ({exc}); they were made for another model") from None
    except (RuntimeError, MemoryError, OverflowError) as exc:
        raise WeightsError(f"weights {source}: the network their configuration describes "
                           f"cannot be built here ({exc})") from None
    load_into(model, state, source=source)
    meta = {**meta, "weights_file": str(resolved.path)}
    return model.eval().to(device), meta


def _check_config_fits(build: Callable[[dict], Any], config: dict, state: dict[str, Any],
                       source: str) -> None:
    """Build the network on PyTorch's meta device (shapes only, no memory) first, so a
    configuration that describes a network far larger than the file's tensors is a
    WeightsError before anything is allocated (smaller mismatches are named key by key by
    the strict load). A network that cannot be built on the meta device is left to the
    real build."""
    import torch

    try:
        with torch.device("meta"):
            skeleton = build(config)
        wanted = sum(int(v.numel()) for v in skeleton.state_dict().values())
    except Exception:  # noqa: BLE001 - reported by the real build, in its words
        return
    held = sum(int(getattr(v, "numel", lambda: 0)()) for v in state.values())
    if wanted > 4 * held + 10_000_000:
        raise WeightsError(f"weights {source}: their configuration describes a network of "
                           f"{wanted:,} values, but the file holds {held:,}; the metadata does "
                           "not belong to these tensors")


def read_torch_state(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """A torch state dict file (e.g. torchvision ImageNet weights a user brings), loaded with
    weights_only=True; an unreadable file is a WeightsError naming it."""
    import torch

    import pickle

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"cannot read {what} {str(path)!r}: no such file")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (Exception, pickle.UnpicklingError) as exc:  # noqa: BLE001 - torch.load raises many kinds
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"cannot read {what} {str(path)!r}: not a torch weights file "
                           f"({type(exc).__name__}: {first_line[:200]})") from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise WeightsError(f"{what} {str(path)!r} is not a state dict")
    check_finite(state, source=f"{what} {str(path)!r}")
    return dict(state)


def save(path: str | os.PathLike, state: Mapping[str, Any], metadata: Mapping[str, Any], *,
         half: bool = False) -> str:
    """Write weights + metadata atomically, and a ``.sha256`` sidecar; return the sha256."""
    from safetensors.torch import save as st_save

    import torch

    tensors = {}
    for k, v in state.items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.to(torch.float16)
        tensors[k] = v
    data = st_save(tensors, metadata={META_KEY: json.dumps(dict(metadata), default=str)})
    from .image import write_bytes_atomic

    write_bytes_atomic(path, data, overwrite=True)
    digest = hashlib.sha256(data).hexdigest()
    write_bytes_atomic(Path(str(path) + ".sha256"),
                       f"{digest}  {Path(path).name}\n".encode(), overwrite=True)
    return digest


def update_manifest(folder: str | os.PathLike, filename: str) -> str:
    """Record a file's SHA-256 and size in ``folder/manifest.json``; return the sha256."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    entries = json.loads(manifest.read_text()) if manifest.exists() else {}
    digest = sha256_file(folder / filename)
    entries[filename] = {"sha256": digest, "size": (folder / filename).stat().st_size}
    manifest.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    return digest
