"""`CheckedColorizer`: what `colorplug.get` returns around any backend's colorizer.

Every host (API, CLI, napari, GIMP) receives results through it, so a backend that is not
built on `ChromaColorizer` is held to the same contract: one (H, W, 3) or (H, W, 4) array
per input, of the input's size, uint8 / uint16 / float32, finite. Errors that are not
colorplug's own become a `BackendError` naming the backend and its plugin distribution.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .errors import BackendError, ColorplugError
from .protocol import BackendInfo

_OUTPUT_DTYPES = (np.uint8, np.uint16, np.float32)


def input_hw(image: Any) -> tuple[int, int] | None:
    """(H, W) an input will be colorized at, without converting it; None if unknown."""
    shape = getattr(image, "shape", None)
    if shape is None:
        size = getattr(image, "size", None)  # PIL: (width, height)
        if isinstance(size, tuple) and len(size) == 2 and hasattr(image, "getbands"):
            return int(size[1]), int(size[0])
        return None
    shape = tuple(int(n) for n in shape)
    if len(shape) == 2:
        return shape
    if len(shape) == 3:
        return shape[1:] if _channels_first(image, shape) else shape[:2]
    return None


def _channels_first(image: Any, shape: tuple[int, ...]) -> bool:
    """A 3-D torch tensor held (C, H, W), as torch code holds images."""
    return (type(image).__module__.split(".")[0] == "torch"
            and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4))


def input_has_alpha(image: Any) -> bool | None:
    """Whether an input carries an alpha channel (its result must too); None if unknown."""
    if hasattr(image, "getbands") and hasattr(image, "mode"):  # PIL
        return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
            image.mode == "P" and "transparency" in getattr(image, "info", {}))
    shape = getattr(image, "shape", None)
    if shape is None:
        return None
    shape = tuple(int(n) for n in shape)
    if len(shape) == 2:
        return False
    if len(shape) == 3:
        return (shape[0] if _channels_first(image, shape) else shape[-1]) == 4
    return None


class CheckedColorizer:
    """A backend's colorizer with every result checked (attributes pass through)."""

    def __init__(self, inner: Any, *, name: str, distribution: str,
                 output_dtype: str = "uint8") -> None:
        for method in ("colorize", "colorize_batch"):
            if not callable(getattr(inner, method, None)):
                raise BackendError(f"backend {name!r} ({distribution}) built an object "
                                   f"without a {method}() method: {type(inner).__name__}")
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_distribution", distribution)
        object.__setattr__(self, "_output_dtype", np.dtype(output_dtype))

    @property
    def info(self) -> BackendInfo:
        return self._inner.info

    @property
    def inner(self) -> Any:
        """The backend's own colorizer object."""
        return self._inner

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._inner, attr, value)

    def __repr__(self) -> str:
        return repr(self._inner)

    # ---------------------------------------------------------------------- calls
    def colorize(self, image: Any, *, reference: Any = None, hints: Any = None
                 ) -> np.ndarray | list[np.ndarray]:
        """Colorize one image (a list or tuple: a list of results), checked."""
        if isinstance(image, (list, tuple)):
            return self.colorize_batch(image, reference=reference, hints=hints)
        out = self._call(self._inner.colorize, image, reference=reference, hints=hints)
        return self._check(out, image, "the image")

    def colorize_batch(self, images: Sequence[Any], *, reference: Any = None,
                       hints: Any = None) -> list[np.ndarray]:
        """Colorize many images, each result checked."""
        images = list(images)
        outs = self._call(self._inner.colorize_batch, images, reference=reference, hints=hints)
        if not isinstance(outs, (list, tuple)) or len(outs) != len(images):
            got = len(outs) if isinstance(outs, (list, tuple)) else type(outs).__name__
            raise self._error(f"returned {got} results for {len(images)} images")
        return [self._check(o, im, f"image {i}") for i, (o, im) in enumerate(zip(outs, images))]

    def colorize_batch_deferred(self, images: Sequence[Any], *, reference: Any = None,
                                hints: Any = None) -> list[Callable[[], np.ndarray]]:
        """The network now, one checked full-resolution result per image later (see
        `ChromaColorizer.colorize_batch_deferred`); other backends: their results at once."""
        images = list(images)
        deferred = getattr(self._inner, "colorize_batch_deferred", None)
        if deferred is None:
            outs = self.colorize_batch(images, reference=reference, hints=hints)
            return [lambda out=out: out for out in outs]
        finishers = self._call(deferred, images, reference=reference, hints=hints)
        if not isinstance(finishers, (list, tuple)) or len(finishers) != len(images):
            raise self._error(f"returned {len(finishers)} results for {len(images)} images")

        def checked(finish: Callable[[], Any], image: Any, what: str) -> Callable[[], np.ndarray]:
            return lambda: self._check(self._call(finish), image, what)

        return [checked(f, im, f"image {i}") for i, (f, im) in enumerate(zip(finishers, images))]

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from .gl_guard import guard_triton

        guard_triton()  # a backend may import torch._dynamo lazily (see colorplug.gl_guard)
        try:
            return method(*args, **kwargs)
        except ColorplugError:
            raise
        except BaseException as exc:  # noqa: BLE001 - a backend may raise anything
            if isinstance(exc, KeyboardInterrupt):
                raise
            what = (f"SystemExit({exc.code!r})" if isinstance(exc, SystemExit)
                    else f"{type(exc).__name__}: {exc}")
            raise self._error(f"failed: {what}") from exc

    def _error(self, problem: str) -> BackendError:
        return BackendError(f"backend {self._name!r} ({self._distribution}) {problem}")

    def _check(self, out: Any, image: Any, what: str) -> np.ndarray:
        if not isinstance(out, np.ndarray):
            raise self._error(f"returned {type(out).__name__} for {what}, not a numpy image")
        if out.ndim != 3 or out.shape[-1] not in (3, 4):
            raise self._error(f"returned an array shaped {out.shape} for {what}; expected "
                              "(H, W, 3) or (H, W, 4)")
        expected = input_hw(image)
        if expected is not None and tuple(out.shape[:2]) != expected:
            raise self._error(f"returned {out.shape[1]}x{out.shape[0]} pixels for {what} of "
                              f"{expected[1]}x{expected[0]}; a colorizer must keep the size")
        if out.dtype not in _OUTPUT_DTYPES:
            raise self._error(f"returned dtype {out.dtype} for {what}; expected uint8, uint16 "
                              "or float32")
        if out.dtype == np.float32:
            if not np.isfinite(out).all():
                raise self._error(f"returned NaN or infinite values for {what}")
            if out.size and (float(out.min()) < -1e-3 or float(out.max()) > 1 + 1e-3):
                raise self._error(f"returned float values outside [0, 1] for {what}")
        if out.dtype != self._output_dtype:
            raise self._error(f"returned dtype {out.dtype} for {what} where output_dtype "
                              f"{self._output_dtype} was asked for")
        alpha = input_has_alpha(image)
        if alpha is not None and (out.shape[-1] == 4) != alpha:
            raise self._error(f"{'dropped' if alpha else 'added'} an alpha channel for {what} "
                              f"(the input {'has' if alpha else 'has no'} alpha; the result "
                              "must match)")
        return out
