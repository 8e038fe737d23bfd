"""OpenCV, imported on first use with a clear error naming the extra when it is missing."""
from __future__ import annotations

from typing import Any

from ..errors import InputError


def cv2() -> Any:
    """The cv2 module (opencv-python-headless, part of the `video` extra)."""
    try:
        import cv2 as _cv2
    except ImportError:
        raise InputError("video needs OpenCV: pip install 'colorplug[video]' "
                         "(opencv-python-headless)") from None
    return _cv2
