"""Colorize dask arrays lazily: one task per 2D plane, one model per worker process.

    import dask.array as da, colorplug.dask
    rgb = colorplug.dask.colorize_array(da.from_zarr("stack.zarr"), "autoencoder")
    rgb[10].compute()            # or hand `rgb` to napari, or rgb.to_zarr(...)

Each plane goes through the backend's normal `colorize` (full-resolution lightness, chroma
predicted by the model), so a plane comes out as it would from ``colorplug.get(...)``.
Models are built on first use in each worker process and kept in a per-process cache
keyed by backend, device, weights and options, so a cluster loads a model once per
process, not once per task. Importing this module imports dask; ``import colorplug`` does
not import this module.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ColorplugError, InputError


@dataclass(frozen=True)
class BackendSpec:
    """What builds a colorizer on a worker: small, picklable, hashable (the cache key)."""

    name: str | None
    device: str = "cpu"
    weights: Any = None
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, name: str | None, *, device: str = "cpu", weights: Any = None,
           **options: Any) -> "BackendSpec":
        return cls(name, device, weights, tuple(sorted(options.items())))

    def key(self) -> str:
        return repr((self.name, self.device, self.weights, self.options))


_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def colorizer_for(spec: BackendSpec) -> Any:
    """This process's colorizer for `spec`, built once and kept (worker-side model cache)."""
    key = spec.key()
    model = _models.get(key)
    if model is None:
        with _models_lock:  # threads of one worker share one model, built once
            model = _models.get(key)
            if model is None:
                from . import get

                model = get(spec.name, weights=spec.weights, device=spec.device,
                            **dict(spec.options))
                _models[key] = model
    return model


def keep_colorizer(spec: BackendSpec, colorizer: Any) -> None:
    """Put an already built colorizer into this process's cache (the driver's own model
    then serves the threads scheduler without a second load)."""
    with _models_lock:
        _models.setdefault(spec.key(), colorizer)


def _colorize_block(block: np.ndarray, spec: BackendSpec, reference: Any) -> np.ndarray:
    """One chunk of whole planes (..., Y, X) -> (..., Y, X, C)."""
    colorizer = colorizer_for(spec)
    planes = block.reshape((-1,) + block.shape[-2:])
    rgb = colorizer.colorize_batch(list(planes), reference=reference)
    out = np.stack(rgb)
    return out.reshape(block.shape + out.shape[-1:])


def _output_dtype(options: dict[str, Any]) -> np.dtype:
    name = options.get("output_dtype", "uint8")
    if name not in ("uint8", "uint16", "float32"):
        raise ColorplugError(f"output_dtype must be uint8, uint16 or float32; got {name!r}")
    return np.dtype(name)


def colorize_array(array: Any, backend: str | None = None, *, reference: Any = None,
                   device: str = "cpu", weights: Any = None, **options: Any) -> Any:
    """A lazy colour version of a 2D (Y, X), 3D (Z, Y, X) or 4D (T, Z, Y, X) grayscale
    dask (or numpy) array: shape + (3,), uint8 unless ``output_dtype`` says otherwise.

    The array is rechunked so every chunk is one whole plane (backends with a global path
    need the whole plane), and each plane is one task. `backend` and `options` are those
    of ``colorplug.get``; `reference` is a colour reference image for backends using one.
    The backend is built here once to check the name and options before anything runs.
    """
    import dask.array as da

    if not isinstance(array, da.Array):
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            raise InputError(f"colorize_array takes a dask or numpy array; got "
                             f"{type(array).__name__}")
        array = da.from_array(array, chunks=-1)
    if array.ndim not in (2, 3, 4):
        raise InputError(f"colorize_array takes 2D (Y, X), 3D (Z, Y, X) or 4D (T, Z, Y, X) "
                         f"grayscale arrays; got shape {array.shape}")
    if array.dtype.kind not in "uif" and array.dtype != np.bool_:
        raise InputError(f"colorize_array: dtype {array.dtype} is not an image dtype")
    spec = BackendSpec.of(backend, device=device, weights=weights, **options)
    colorizer = colorizer_for(spec)  # unknown backend or option: an error now, not per task
    info = colorizer.info
    if info.needs_hints:
        raise InputError(f"backend {info.name!r} needs colour hints per image; "
                         "colorize_array does not take hints")
    if info.needs_reference and reference is None:
        raise InputError(f"backend {info.name!r} needs a colour reference image: pass "
                         "reference=")
    dtype = _output_dtype(options)
    planes = array.rechunk((1,) * (array.ndim - 2) + (-1, -1))
    chunks = planes.chunks + ((3,),)
    return da.map_blocks(_colorize_block, planes, spec, reference, dtype=dtype,
                         chunks=chunks, new_axis=array.ndim,
                         meta=np.empty((0,) * (array.ndim + 1), dtype),
                         token="colorplug-" + (info.name or "colorize"))
