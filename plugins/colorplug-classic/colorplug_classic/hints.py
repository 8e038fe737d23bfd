"""Colour hints for scribble: colorplug's one parser (`colorplug.hints`: points, an RGBA
strokes image, a marked RGB image, or an image with an explicit mask)."""
from __future__ import annotations

from typing import Any

import numpy as np

import colorplug
from colorplug.hints import hint_maps


def parse_hints(hints: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Hints in any accepted form -> (ab float32 (H, W, 2), mask bool (H, W)); colorplug's
    own parser (`colorplug.hints.hint_maps`), so every host's hints mean the same."""
    if hints is None:
        raise colorplug.MissingHintsError("the scribble backend needs colour hints: pass "
                                          "hints= (points, an RGBA strokes image or a marked "
                                          "RGB image; CLI: --hints FILE)")
    return hint_maps(hints, tuple(shape))
