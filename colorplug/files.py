"""Files colorplug writes and folders it walks: atomic writes, stale temporaries, search.

Every write goes to a hidden temporary file in the destination folder, named
``.NAME.PID.RANDOM.part``, and is renamed into place, so a reader never sees half a file.
A run killed before the rename leaves its temporary behind; `clean_stale_parts` removes
those whose process is gone on the next run into that folder.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from .errors import OutputError

_PART_RE = re.compile(r"^\..+\.(\d+)\.[^.]+\.part$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def clean_stale_parts(folders: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove colorplug's temporaries left by killed runs in `folders` (not recursive);
    return what was removed. Temporaries of processes still running are kept."""
    removed = []
    for folder in {Path(f) for f in folders}:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            m = _PART_RE.match(entry.name)
            if m and (entry.is_file() or entry.is_dir()) and not _pid_alive(int(m.group(1))):
                try:
                    if entry.is_dir() and not entry.is_symlink():  # a partial zarr stack
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                    removed.append(entry)
                except OSError:
                    pass
    return removed


def _write_error(path: Path, exc: OSError) -> OutputError:
    why = exc.strerror or str(exc)
    return OutputError(f"cannot write {str(path)!r}: {why}")


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> None:
    """Write a file through a temporary file in the same folder, then rename it in place.

    Without `overwrite` an existing file is never replaced (FileExistsError), also if it
    appears while writing. A folder that cannot be written is an OutputError naming `path`.
    """
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part",
                                   dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get normal permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        move_into_place(tmp, path, overwrite=overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def move_into_place(tmp: str | os.PathLike, path: str | os.PathLike, *,
                    overwrite: bool = False) -> None:
    """Rename a finished temporary file in `path`'s folder to `path` in one step, so a
    reader sees the whole file or none. Without `overwrite` an existing `path` is never
    replaced (FileExistsError), also if it appears meanwhile; `tmp` is then left to the
    caller."""
    tmp, path = Path(tmp), Path(path)
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if the destination exists: no silent overwrite
    except FileExistsError:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite to replace it") from None
    except OSError:  # file systems without hard links
        if path.exists() or path.is_symlink():
            raise FileExistsError(f"{str(path)!r} exists") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def temporary_beside(path: str | os.PathLike) -> Path:
    """A fresh hidden temporary name in `path`'s folder (``.NAME.PID.RANDOM.part``), which
    `clean_stale_parts` removes once its process is gone."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part",
                               dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get normal permissions
    return Path(tmp)


def find_images(paths: Sequence[str | os.PathLike] | str | os.PathLike,
                suffixes: Iterable[str] | None = None) -> list[Path]:
    """Files given, plus image files found recursively in folders given, sorted."""
    if suffixes is None:
        from .image.codecs import IMAGE_SUFFIXES as suffixes
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
