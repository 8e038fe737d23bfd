"""The shared colorize pipeline: keep full-resolution L*, predict chroma, recombine.

A backend subclasses `ChromaColorizer` and implements `predict_chroma`, which receives
lightness maps and returns a*b* maps at whatever size the model works at. This class does
the rest for every backend the same way: input validation, bilinear upsampling of a*b* to
the input size, recombination with the input's own L* in CIE Lab, conversion to sRGB
(out-of-gamut colours lose chroma, not lightness), alpha and output dtype. Work on the full-size image is done in strips of
rows so memory stays bounded for very large images.
"""
from __future__ import annotations

import contextlib
import warnings
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import numpy as np

from . import color
from .errors import (BackendError, ColourInputWarning, IgnoredInputWarning, InputError,
                     MissingHintsError, MissingReferenceError, ResourceError)
from .image import OUTPUT_DTYPES, Prepared, convert_dtype, prepare, prepare_reference
from .protocol import BackendInfo

STRIP_PIXELS = 1 << 20  # pixels recombined at a time


def axis_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of bilinear resampling with half-pixel centres."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


class _Upsampler:
    """Bilinear resampling (half-pixel centres) of a small (h, w, C) map to (H, W, C),
    handed out by row strips: the horizontal pass runs once over the h small rows
    (OpenCV), the vertical pass per strip, so no full-size map ever exists."""

    def __init__(self, small: np.ndarray, out_h: int, out_w: int) -> None:
        import cv2

        small = np.ascontiguousarray(small, dtype=np.float32)
        self.planes = [cv2.resize(np.ascontiguousarray(small[..., c]), (out_w, small.shape[0]),
                                  interpolation=cv2.INTER_LINEAR)
                       .reshape(small.shape[0], out_w) for c in range(small.shape[2])]
        self.y0, self.y1, self.wy = axis_weights(out_h, small.shape[0])

    def rows(self, r0: int, r1: int) -> list[np.ndarray]:
        """Channel planes (r1 - r0, W) of rows r0:r1 of the resized map."""
        y0, y1, wy = self.y0[r0:r1], self.y1[r0:r1], self.wy[r0:r1, None]
        out = []
        for plane in self.planes:
            top = plane[y0]
            bottom = plane[y1]
            bottom -= top
            bottom *= wy
            bottom += top
            out.append(bottom)
        return out


def upsample_rows(small: np.ndarray, out_h: int, out_w: int, r0: int, r1: int) -> np.ndarray:
    """Rows r0:r1 of `small` (h, w, C) resized bilinearly to (out_h, out_w, C).

    Equals ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``.
    """
    return np.stack(_Upsampler(small, out_h, out_w).rows(r0, r1), axis=-1)


def recombine(lightness: np.ndarray, ab_small: np.ndarray, alpha: np.ndarray | None,
              output_dtype: str) -> np.ndarray:
    """Full-size L* + low-resolution a*b* -> output image of the input's size."""
    h, w = lightness.shape
    channels = 4 if alpha is not None else 3
    out = np.empty((h, w, channels), dtype=np.dtype(output_dtype))
    ab = _Upsampler(ab_small, h, w)
    step = max(1, STRIP_PIXELS // max(w, 1))
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        a, b = ab.rows(r0, r1)
        linear = color.lab_to_linear_in_gamut(lightness[r0:r1], a, b)
        for c in range(3):
            out[r0:r1, :, c] = (color.linear_to_srgb8(linear[c]) if output_dtype == "uint8"
                                else convert_dtype(color.linear_to_srgb(linear[c]),
                                                  output_dtype))
        if alpha is not None:
            out[r0:r1, :, 3] = convert_dtype(alpha[r0:r1], output_dtype)
    return out


class PreparedReference:
    """A colour reference already checked and converted to Lab (see
    `ChromaColorizer.prepare_reference`)."""

    __slots__ = ("lab",)

    def __init__(self, lab: np.ndarray) -> None:
        self.lab = lab


class ChromaColorizer(ABC):
    """Base class of colorizers that predict a*b* and keep the input's L*.

    Options common to every backend: ``intensity_range`` (see `colorplug.image`) and
    ``output_dtype`` ("uint8", "uint16" or "float32").
    """

    info: BackendInfo

    def __init__(self, *, intensity_range: Any = None, output_dtype: str = "uint8") -> None:
        if output_dtype not in OUTPUT_DTYPES:
            raise InputError(f"output_dtype must be one of {', '.join(OUTPUT_DTYPES)}; "
                             f"got {output_dtype!r}")
        self.intensity_range = intensity_range
        self.output_dtype = output_dtype

    # -- to implement --------------------------------------------------------------
    @abstractmethod
    def predict_chroma(self, lightness: list[np.ndarray], *, reference: np.ndarray | None,
                       hints: Any) -> list[np.ndarray]:
        """a*b* (h, w, 2) for each lightness map (H, W) in [0, 100]; any h, w."""

    def predict_confidence(self, lightness: list[np.ndarray], *,
                           reference: np.ndarray | None) -> list[np.ndarray]:
        """Confidence (h, w) in [0, 1] of each map's chroma, at any h, w; backends that know
        one override this (bins weights: 1 - the entropy of the bins; exemplar: the match
        similarity). Scales differ between backends: compare a backend with itself."""
        raise InputError(f"backend {self.info.name!r} gives no per-pixel confidence for its "
                         "colours (bins weights of fusion and cgan, and exemplar, do)")

    # -- public API ----------------------------------------------------------------
    def confidence(self, image: Any, *, reference: Any = None) -> np.ndarray:
        """How sure the backend is of each pixel's colour: (H, W) float32 in [0, 1] at the
        input's size, on the backend's own scale (see its `predict_confidence`); what the
        evaluation's "confident colour" share is measured on."""
        ref = self.reference_lab(reference, stacklevel=3)
        prepared = prepare(image, intensity_range=self.intensity_range)
        h, w = prepared.lightness.shape
        with self.memory_errors([image]):
            small = self._checked_confidence(
                self.predict_confidence([prepared.lightness], reference=ref))
            return np.clip(upsample_rows(small[..., None], h, w, 0, h)[..., 0], 0.0, 1.0)

    def _checked_confidence(self, maps: Any) -> np.ndarray:
        """predict_confidence's result must be one finite (h, w) map."""
        try:
            maps = [np.asarray(m, dtype=np.float32) for m in maps]
        except (TypeError, ValueError) as exc:
            raise BackendError(f"backend {self.info.name!r} returned a confidence that is not "
                               f"numeric ({exc})") from None
        if len(maps) != 1:
            raise BackendError(f"backend {self.info.name!r} returned {len(maps)} confidence "
                               "maps for 1 image")
        small = maps[0]
        if small.ndim != 2 or 0 in small.shape or not np.isfinite(small).all():
            raise BackendError(f"backend {self.info.name!r} returned a confidence map shaped "
                               f"{small.shape} or not finite; expected finite (h, w)")
        return small

    def colorize(self, image: Any, *, reference: Any = None, hints: Any = None
                 ) -> np.ndarray | list[np.ndarray]:
        """Colorize one image -> (H, W, 3), or (H, W, 4) when the input has alpha.

        A list or tuple of images returns a list (see `colorize_batch`).
        """
        if isinstance(image, (list, tuple)):
            return self.colorize_batch(image, reference=reference, hints=hints)
        return self.colorize_batch([image], reference=reference, hints=hints)[0]

    def colorize_batch(self, images: Sequence[Any], *, reference: Any = None,
                       hints: Any = None) -> list[np.ndarray]:
        """Colorize many images with one reference; one-by-one results within 1/255 (the
        network runs batched, whose float sums can round a value one level apart)."""
        return [finish() for finish in self.colorize_batch_deferred(images, reference=reference,
                                                                    hints=hints)]

    def colorize_batch_deferred(self, images: Sequence[Any], *, reference: Any = None,
                                hints: Any = None) -> list[Callable[[], np.ndarray]]:
        """Run the network now; return one function per image that recombines its
        full-resolution result when called. Hosts call those from I/O threads, so the
        recombination of one batch overlaps the network of the next."""
        images = list(images)
        if not images:
            raise InputError("no images given (empty list)")
        with self.memory_errors(images):
            pending = self._predict_batch(images, reference, hints)

        def finisher(prepared: Prepared, ab: np.ndarray, image: Any) -> Callable[[], np.ndarray]:
            def finish() -> np.ndarray:
                with self.memory_errors([image]):
                    return recombine(prepared.lightness, ab, prepared.alpha, self.output_dtype)
            return finish

        return [finisher(p, ab, im) for (p, ab), im in zip(pending, images)]

    @contextlib.contextmanager
    def memory_errors(self, images: list[Any]):
        """MemoryError (numpy) and torch's allocator failures -> ResourceError."""
        try:
            yield
        except MemoryError:
            raise ResourceError(self._memory_message(images)) from None
        except RuntimeError as exc:  # torch's allocator
            if "can't allocate memory" in str(exc) or "out of memory" in str(exc):
                raise ResourceError(self._memory_message(images)) from None
            raise

    @staticmethod
    def _memory_message(images: list[Any]) -> str:
        from .checked import input_hw

        sizes = [input_hw(im) for im in images]
        pixels = sum(h * w for h, w in (s for s in sizes if s))
        big = max((s for s in sizes if s), key=lambda s: s[0] * s[1], default=None)
        what = f"a {big[1]}x{big[0]} image" if big and len(images) == 1 else \
            f"{len(images)} images"
        return (f"not enough memory to colorize {what}: about {pixels * 14 / 2**30:.1f} GB are "
                "needed (full-resolution lightness and the output, ~14 bytes per pixel) besides "
                "the model; close other programs, use a smaller image, or colorize it in tiles "
                "or planes (colorplug.dask)")

    def _predict_batch(self, images: list[Any], reference: Any, hints: Any
                       ) -> list[tuple[Prepared, np.ndarray]]:
        ref = self.reference_lab(reference)
        hints = self.checked_hints(hints)
        prepared: list[Prepared] = [
            prepare(im, intensity_range=self.intensity_range,
                    what="image" if len(images) == 1 else f"image {i}")
            for i, im in enumerate(images)
        ]
        for i, p in enumerate(prepared):
            if p.is_color:  # said once per image, wherever the host shows warnings
                what = "the image" if len(images) == 1 else f"image {i}"
                warnings.warn(ColourInputWarning(
                    f"{what} is already in colour: backend {self.info.name!r} keeps only its "
                    "lightness and replaces its colours; give the gray original, or steer "
                    "the colours with a reference or hints"), stacklevel=4)
        chroma = self.predict_chroma([p.lightness for p in prepared], reference=ref,
                                     hints=hints)
        chroma = self.checked_chroma(chroma, len(prepared))
        return list(zip(prepared, chroma))

    def checked_chroma(self, chroma: Any, count: int) -> list[np.ndarray]:
        """predict_chroma's result must be `count` finite (h, w, 2) maps; a NaN or inf is a
        broken model or weights, never an image."""
        try:
            maps = [np.asarray(ab, dtype=np.float32) for ab in chroma]
        except (TypeError, ValueError) as exc:
            raise BackendError(f"backend {self.info.name!r} returned chroma that is not "
                               f"numeric ({exc})") from None
        if len(maps) != count:
            raise BackendError(f"backend {self.info.name!r} returned {len(maps)} chroma maps "
                               f"for {count} images")
        for ab in maps:
            if ab.ndim != 3 or ab.shape[-1] != 2 or 0 in ab.shape:
                raise BackendError(f"backend {self.info.name!r} returned chroma shaped "
                                   f"{ab.shape}; expected (h, w, 2)")
            if not np.isfinite(ab).all():
                weights = getattr(self, "metadata", {}).get("weights_file")
                raise BackendError(
                    f"backend {self.info.name!r} produced NaN or infinite colours"
                    + (f" with weights {weights!r}" if weights else "")
                    + "; the weights are broken or do not suit this input, so no image was made")
        return maps

    # -- helpers -------------------------------------------------------------------
    def reference_lab(self, reference: Any, stacklevel: int = 4) -> np.ndarray | None:
        """A colour reference as Lab for `predict_chroma` (checked, required or ignored as
        the backend's info says); hosts that call `predict_chroma` themselves use it."""
        if reference is None:
            if self.info.needs_reference:
                raise MissingReferenceError(
                    f"backend {self.info.name!r} needs a colour reference image: pass "
                    "reference=... (CLI: --reference FILE)")
            return None
        if not self.info.accepts_reference:
            warnings.warn(f"backend {self.info.name!r} takes no reference image; the "
                          "reference was ignored", IgnoredInputWarning, stacklevel=stacklevel)
            return None
        if isinstance(reference, PreparedReference):
            return reference.lab
        return prepare_reference(reference)

    def prepare_reference(self, reference: Any) -> "PreparedReference | None":
        """Check and convert a reference once, for many `colorize` calls (a stack's planes):
        pass the result as ``reference=``."""
        lab = self.reference_lab(reference)
        return None if lab is None else PreparedReference(lab)

    def checked_hints(self, hints: Any) -> Any:
        """Hints as `predict_chroma` takes them (required or ignored as the info says)."""
        if hints is None and self.info.needs_hints:
            raise MissingHintsError(f"backend {self.info.name!r} needs colour hints: pass "
                                    "hints=... (CLI: --hints FILE)")
        if hints is not None and not self.info.supports_hints:
            warnings.warn(f"backend {self.info.name!r} takes no colour hints; the hints "
                          "were ignored", IgnoredInputWarning, stacklevel=4)
            return None
        return hints

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.info.name!r}>"
