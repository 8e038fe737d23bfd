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
import shutil
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
    """Copy the plug-in into GIMP's plug-ins folder and record the Python to call."""
    folder = (gimp_dir or default_gimp_dir()) / "plug-ins" / PLUGIN
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{PLUGIN}.py"
    shutil.copyfile(plugin_source(), target)
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (folder / f"{PLUGIN}.json").write_text(
        json.dumps({"python": python or [sys.executable]}, indent=2) + "\n")
    return target


def uninstall(gimp_dir: Path | None = None) -> Path | None:
    folder = (gimp_dir or default_gimp_dir()) / "plug-ins" / PLUGIN
    if folder.exists():
        shutil.rmtree(folder)
        return folder
    return None
