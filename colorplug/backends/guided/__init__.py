"""The `guided` backend: colour from hints (points, strokes) and a learnt prior.

Registered through the plugin hook like any third-party backend; torch is imported only
when the backend is built.
"""
from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl
from .info import INFO


def build(*, weights: Any = None, device: str = "auto", **options: Any) -> Any:
    from .colorizer import GuidedColorizer

    return GuidedColorizer(weights=weights, device=device, **options)


@hookimpl
def colorplug_register_colorizers(register):  # type: ignore[no-untyped-def]
    register("guided", build, INFO)
