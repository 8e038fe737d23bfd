"""Files colorplug writes: atomic writes and our temporaries (folder search for images is
`colorplug.image.find`).

Every write goes to a hidden temporary file in the destination folder and is renamed into
place, so a reader never sees half a file. A temporary is named
``.colorplug~PID~HOST~TOKEN~NAME.part``: a fixed prefix, the writing process, a tag of this
host, and a random token whose last 8 hex digits are a checksum of the rest, so no name a
user chooses by hand passes for one of ours. A run killed before the rename leaves its
temporary behind; `clean_stale_parts` removes, on the next run into that folder, only
regular files (never a folder, never a symlink) owned by this user whose name carries a
valid checksum, made on this host by a process that is gone.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import stat
from pathlib import Path
from typing import Iterable

from .errors import OutputError

TEMPORARY_PREFIX = ".colorplug~"
TEMPORARY_SUFFIX = ".part"
_TEMPORARY_RE = re.compile(r"^\.colorplug~(?P<pid>\d{1,10})~(?P<host>[0-9a-f]{8})~"
                           r"(?P<random>[0-9a-f]{16})(?P<check>[0-9a-f]{8})~.*\.part$", re.S)


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _checksum(pid: str, host: str, random: str) -> str:
    return hashlib.sha256(f"colorplug-temporary:{pid}:{host}:{random}".encode()).hexdigest()[:8]


def temporary_name(final_name: str) -> str:
    """A fresh name for a temporary of `final_name` made by this process (see the module
    docstring for why it looks like this)."""
    pid, host, random = str(os.getpid()), _host_tag(), secrets.token_hex(8)
    return (f"{TEMPORARY_PREFIX}{pid}~{host}~{random}{_checksum(pid, host, random)}~"
            f"{final_name}{TEMPORARY_SUFFIX}")


def final_name_of(temporary: str | os.PathLike) -> str:
    """The final file name a temporary made by `temporary_name` stands for."""
    name = Path(temporary).name
    m = _TEMPORARY_RE.match(name)
    if m is None:
        return name
    return name[m.end("check") + 1:-len(TEMPORARY_SUFFIX)]


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (another user's counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process, or not a pid we can judge: keep its files
    return True


def is_stale_temporary(path: str | os.PathLike) -> bool:
    """Whether `path` is provably a temporary colorplug made (name with a valid checksum,
    this host, this user's regular file, not a symlink) whose process is gone."""
    path = Path(path)
    m = _TEMPORARY_RE.match(path.name)
    if m is None or m["host"] != _host_tag():
        return False
    if _checksum(m["pid"], m["host"], m["random"]) != m["check"]:
        return False
    try:
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        return False
    return not process_alive(int(m["pid"]))


def clean_stale_parts(folders: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove colorplug's temporary files left by killed runs in `folders` (not recursive);
    return what was removed. Anything that is not provably one of ours stays."""
    removed = []
    for folder in {Path(f) for f in folders}:
        try:
            if folder.is_symlink() or not folder.is_dir():
                continue
            entries = [e for e in folder.iterdir() if e.name.startswith(TEMPORARY_PREFIX)]
        except OSError:
            continue
        for entry in entries:
            if is_stale_temporary(entry):
                try:
                    entry.unlink()
                    removed.append(entry)
                except OSError:
                    pass
    return removed


def _create_temporary(folder: Path, final_name: str) -> tuple[int, Path]:
    """Create a new temporary file (mode 0600 until the caller widens it); its fd and path."""
    while True:
        tmp = folder / temporary_name(final_name)
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                         0o600)
        except FileExistsError:
            continue
        return fd, tmp


def _normal_permissions(path: str | os.PathLike) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # temporaries start at 0600; outputs get normal ones


def temporary_folder_beside(path: str | os.PathLike) -> Path:
    """A fresh private folder in `path`'s folder, named like our temporaries. Cleanup never
    removes folders: whoever makes one removes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / temporary_name(path.name)
        try:
            tmp.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return tmp


def regular_file_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be read as a file without blocking (missing, a folder, a pipe,
    device or socket), or None for a regular file. Checked before every open: opening a
    named pipe for reading waits forever for a writer."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISDIR(mode):
        return "it is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "not a regular file (a pipe, device or socket); only regular files are read"
    return None


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
        fd, tmp = _create_temporary(path.parent, path.name)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        _normal_permissions(tmp)
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
    """A fresh empty temporary file in `path`'s folder (see `temporary_name`), which
    `clean_stale_parts` removes once its process is gone."""
    path = Path(path)
    fd, tmp = _create_temporary(path.parent, path.name)
    os.close(fd)
    _normal_permissions(tmp)
    return tmp
