"""Video: colorize films, time-lapses and image sequences (`colorize_video`).

Importing this package imports neither PyAV, OpenCV nor torch; they load when used.
"""
from __future__ import annotations

from typing import Any

__all__ = ["colorize_video"]


def __getattr__(name: str) -> Any:
    if name == "colorize_video":
        from .api import colorize_video

        return colorize_video
    raise AttributeError(f"module 'colorplug.video' has no attribute {name!r}")
