"""colorplug: grayscale to colour, as a library of pluggable backends.

    from colorplug import get
    rgb = get("autoencoder").colorize(gray)

Importing this package does not import torch; backends import it when built.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .errors import (BackendConflictError, BackendError, ColorplugError, DeviceError,
                     IgnoredInputWarning, InputError, MissingHintsError, MissingReferenceError,
                     OutputError, ResourceError, TrainingError, ColourInputWarning,
                     PluginError, UnknownBackendError, UnknownOptionError, WeightsError)
from .errors import GrayscaleReferenceError, NoCudaError  # noqa: E402
from .hookspecs import hookimpl
from .protocol import BackendInfo, Colorizer
from .registry import default_registry, reload_plugins

__version__ = "0.1.0"

#: The backend `get()` uses without a name: chosen on photos_v1's val part by the rule in
#: docs/backends/index.md, whose tables also say where it falls short (on the test part its
#: PSNR is below gray's); ``COLORPLUG_DEFAULT_BACKEND`` overrides it.
DEFAULT_BACKEND = "fusion"

__all__ = [
    "BackendConflictError", "BackendError", "BackendInfo", "ColorplugError", "Colorizer",
    "DEFAULT_BACKEND", "DeviceError", "GrayscaleReferenceError", "IgnoredInputWarning",
    "InputError", "NoCudaError",
    "MissingHintsError", "MissingReferenceError", "OutputError", "PluginError", "ResourceError",
    "TrainingError", "ColourInputWarning", "UnknownBackendError",
    "UnknownOptionError", "WeightsError", "available", "colorize", "sample",
    "default_backend", "get", "hookimpl", "reload_plugins",
]


def default_backend() -> str:
    """Name of the backend used when none is given."""
    return os.environ.get("COLORPLUG_DEFAULT_BACKEND", DEFAULT_BACKEND)


def get(name: str | None = None, *, weights: Any = None, device: str = "auto",
        download: bool | None = None, **options: Any) -> Colorizer:
    """Build the backend `name` (default: `default_backend()`).

    `weights`: None for the shipped weights, a path, an ``https://...#sha256=HEX`` URL or a
    backend's weights enum member. `device`: "auto", "cpu", "cuda" or "cuda:N".
    `download`: whether weights that are not in the cache yet (the zoo's published models)
    may be downloaded now (None: no, unless the host answered for the command, as the CLI's
    --download does); without it a WeightsError names the command, size, licence, URL and
    SHA-256. `options`: backend options plus the common ``intensity_range`` and
    ``output_dtype``.
    """
    return default_registry().get(name or default_backend(), weights=weights, device=device,
                                  download=download, **options)


def available() -> list[BackendInfo]:
    """Every registered backend (built-in and third-party), sorted by name."""
    return default_registry().available()


def colorize(image: Any, backend: str | None = None, *, reference: Any = None,
             hints: Any = None, **options: Any) -> np.ndarray | list[np.ndarray]:
    """One-call colorization: ``get(backend, **options).colorize(image, ...)``."""
    return get(backend, **options).colorize(image, reference=reference, hints=hints)


def colorize_batch(images: Sequence[Any], backend: str | None = None, *,
                   reference: Any = None, **options: Any) -> list[np.ndarray]:
    """Colorize many images with one backend; the results of one by one within 1/255."""
    return get(backend, **options).colorize_batch(images, reference=reference)


def sample(name: str = "astronaut_gray") -> np.ndarray:
    """A bundled sample image as numpy: "astronaut_gray" (512 x 512 uint8) or
    "astronaut_color" (512 x 512 x 3 uint8, a colour reference), from scikit-image's data."""
    from pathlib import Path

    from .image import read_image

    folder = Path(__file__).resolve().parent / "samples"
    names = sorted(p.stem for p in folder.glob("*.png"))
    if name not in names:
        raise InputError(f"no sample {name!r}; samples: {', '.join(names)}")
    return read_image(folder / f"{name}.png")
