"""The `gray` pseudo-backend: zero chroma. The evaluation baseline; needs no torch."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..hookspecs import hookimpl
from ..pipeline import ChromaColorizer
from ..protocol import BackendInfo

INFO = BackendInfo(
    name="gray",
    description="Baseline: zero chroma, output is the input's lightness as neutral gray.",
    working_size=None,
    options={},
)


class GrayColorizer(ChromaColorizer):
    info = INFO

    def predict_chroma(self, lightness: list[np.ndarray], *, reference: Any,
                       hints: Any) -> list[np.ndarray]:
        return [np.zeros((1, 1, 2), np.float32) for _ in lightness]


def build(*, weights: Any = None, device: str = "auto", **options: Any) -> GrayColorizer:
    return GrayColorizer(**options)


@hookimpl
def colorplug_register_colorizers(register):  # type: ignore[no-untyped-def]
    register("gray", build, INFO)
