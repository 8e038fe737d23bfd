"""Installing the GIMP 3 plug-in: ``colorplug gimp install|uninstall [--gimp-dir DIR]``.

GIMP 3 loads each Python plug-in from its own folder in the user's plug-ins directory:
``plug-ins/colorplug_gimp/colorplug_gimp.py`` (executable). Next to it goes
``colorplug_gimp.json`` naming the Python that runs colorplug (this one).

Default GIMP 3 user folder (``$GIMP3_DIRECTORY`` overrides it, as GIMP itself does):
- Linux:   ~/.config/GIMP/3.0
- macOS:   ~/Library/Application Support/GIMP/3.0
- Windows: %APPDATA%\\GIMP\\3.0
"""
from __future__ import annotations

import json
import os
import stat
import sys
from importlib import resources
from pathlib import Path

PLUGIN = "colorplug_gimp"


def default_gimp_dir() -> Path:
    if os.environ.get("GIMP3_DIRECTORY"):
        return Path(os.environ["GIMP3_DIRECTORY"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "GIMP" / "3.0"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "GIMP" / "3.0"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "GIMP" / "3.0"


def plugin_source() -> Path:
    """The plug-in file that matches this colorplug: from the same source checkout when
    colorplug runs from one (plug-in and worker speak the same protocol), else installed."""
    checkout = Path(__file__).resolve().parents[1] / "gimp" / PLUGIN / f"{PLUGIN}.py"
    if checkout.is_file():
        return checkout
    return Path(str(resources.files(PLUGIN) / f"{PLUGIN}.py"))


def install(gimp_dir: Path | None = None, python: list[str] | None = None) -> Path:
    """Copy the plug-in into GIMP's plug-ins folder and record the Python to call (both
    written atomically); a folder that cannot hold it is an OutputError naming it."""
    from .errors import OutputError
    from .files import write_bytes_atomic

    base = gimp_dir or default_gimp_dir()
    folder = base / "plug-ins" / PLUGIN
    target = folder / f"{PLUGIN}.py"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, plugin_source().read_bytes(), overwrite=True)
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        write_bytes_atomic(folder / f"{PLUGIN}.json", (json.dumps(
            {"python": python or [sys.executable]}, indent=2) + "\n").encode(), overwrite=True)
    except OutputError as exc:
        raise OutputError(f"--gimp-dir {base}: {exc}") from None
    except OSError as exc:
        raise OutputError(f"--gimp-dir {base}: cannot install the plug-in into {folder} "
                          f"({exc.strerror or exc}); give GIMP's profile folder, one you "
                          "can write") from None
    return target


#: What `install` writes (and Python compiles beside it): all `uninstall` removes.
INSTALLED = (f"{PLUGIN}.py", f"{PLUGIN}.json")


def uninstall(gimp_dir: Path | None = None) -> Path | None:
    """Remove the files `install` wrote, then the plug-in's folder if that left it empty;
    anything else in it stays (colorplug deletes only what it provably made)."""
    folder = (gimp_dir or default_gimp_dir()) / "plug-ins" / PLUGIN
    if not folder.is_dir() or folder.is_symlink():
        return None
    removed = False
    for name in INSTALLED:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed = True
    cache = folder / "__pycache__"
    if cache.is_dir() and not cache.is_symlink():
        for pyc in cache.glob(f"{PLUGIN}.*.pyc"):
            pyc.unlink()
        try:
            cache.rmdir()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass  # the user's own files are in it: left alone
    return folder if removed else None
