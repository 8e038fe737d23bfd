"""Video: colorize frame sequences with temporal coherence (`colorize_video`), and measure
flicker (`colorplug.video.metrics`). Light at import: OpenCV, PyAV and torch load on use."""
from __future__ import annotations

from typing import Any

__all__ = ["colorize_video"]


def __getattr__(name: str) -> Any:
    if name == "colorize_video":
        from .api import colorize_video

        return colorize_video
    raise AttributeError(f"module 'colorplug.video' has no attribute {name!r}")
