"""`colorize_video`: frames in, colour frames out, streamed, with optional temporal coherence.

Modes (``temporal=``):

- ``"off"``: frame by frame, `batch_size` frames at a time through the backend.
- ``"flow"``: the backend's chroma stabilised by the previous output warped along optical
  flow (`colorplug.video.temporal.FlowPropagator`), reset at shot cuts.
- ``"exemplar"``: every frame colorized by a reference-based backend (``exemplar``, or the
  given backend if it needs a reference) from its shot's keyframe reference: the user's `references` (the one whose
  lightness histogram is closest to the shot's first frame), else the shot's first frame
  colorized by `keyframe_backend`. The reference is prepared once per shot. The exemplar
  backend takes one reference, so the previous output enters as in ``"flow"``: warped
  along the flow and blended by confidence.

Every output keeps its frame's full-resolution L*; only chroma is predicted or blended.
"""
from __future__ import annotations

from itertools import islice
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .. import color
from ..errors import GrayscaleReferenceError, InputError
from ..image import convert_dtype, finish, prepare

MODES = ("off", "flow", "exemplar")


def _unit_rgb(out: np.ndarray) -> np.ndarray:
    """A backend's output (any output dtype, RGB or RGBA) -> float RGB in [0, 1]."""
    rgb = np.asarray(out)[..., :3]
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) / 65535.0
    return np.clip(rgb.astype(np.float32), 0.0, 1.0)


def _uint8(out: np.ndarray) -> np.ndarray:
    rgb = np.asarray(out)[..., :3]
    return rgb if rgb.dtype == np.uint8 else convert_dtype(_unit_rgb(rgb), "uint8")


def _build(backend: Any, options: dict[str, Any], device: str) -> Any:
    from .. import get

    if backend is None or isinstance(backend, str):
        return get(backend, device=device, **options)
    if not hasattr(backend, "colorize_batch"):
        raise InputError(f"backend must be a backend name or a Colorizer; got "
                         f"{type(backend).__name__}")
    return backend


def colorize_video(frames: Iterable[np.ndarray], backend: Any = None, *,
                   temporal: str = "off", references: Sequence[Any] = (),
                   keyframe_backend: str | None = None, options: dict | None = None,
                   device: str = "auto", batch_size: int = 8) -> Iterator[np.ndarray]:
    """Colorize a stream of gray (H, W) or colour (H, W, 3) frames (their lightness is
    used); yields one (H, W, 3) uint8 RGB frame per input frame, lazily, with memory that
    does not grow with the number of frames.

    `backend`: a name or a built Colorizer (default: colorplug's default backend); its
    `options` apply when it is built here. In ``"exemplar"`` mode a backend that needs a
    reference colorizes the frames; any other backend colorizes the keyframes instead,
    and ``exemplar`` the frames.
    The mode, backend and options are checked before the first frame is read.
    """
    if temporal not in MODES:
        raise InputError(f"temporal must be one of {', '.join(MODES)}; got {temporal!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}")
    options = dict(options or {})
    references = list(references or ())
    if temporal == "exemplar":
        main, keyer = _exemplar_pair(backend, keyframe_backend, options, device, references)
        display = options.get("intensity_range", getattr(backend, "intensity_range", None))
        for built in (main, keyer):  # both read the frames' intensities the same way
            if display is not None and hasattr(built, "intensity_range"):
                built.intensity_range = display
        return _exemplar_frames(iter(frames), main, keyer, references, batch_size)
    colorizer = _build(backend, options, device)
    if references and getattr(colorizer, "info", None) is not None \
            and not colorizer.info.accepts_reference:
        raise InputError(f"references were given but backend {colorizer.info.name!r} takes "
                         "none; use temporal='exemplar' to colorize from reference keyframes")
    reference = None
    if references:
        reference = _prepared(colorizer, references[0])
    if temporal == "off":
        return _off_frames(iter(frames), colorizer, reference, batch_size)
    return _flow_frames(iter(frames), colorizer, reference, batch_size)


def _prepared(colorizer: Any, reference: Any) -> Any:
    prep = getattr(colorizer, "prepare_reference", None)
    return prep(reference) if prep is not None else reference


def _chunks(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    while True:
        chunk = list(islice(frames, size))
        if not chunk:
            return
        yield chunk


def _batch(colorizer: Any, chunk: list[np.ndarray], reference: Any) -> list[np.ndarray]:
    kwargs = {"reference": reference} if reference is not None else {}
    return colorizer.colorize_batch(chunk, **kwargs)


def _off_frames(frames: Iterator[np.ndarray], colorizer: Any, reference: Any,
                batch_size: int) -> Iterator[np.ndarray]:
    for chunk in _chunks(frames, batch_size):
        for out in _batch(colorizer, chunk, reference):
            yield _uint8(out)


def _lightness(colorizer: Any, frame: np.ndarray, index: int) -> np.ndarray:
    """The frame's full-resolution L*, read as the backend reads it."""
    return prepare(frame, intensity_range=getattr(colorizer, "intensity_range", None),
                   what=f"frame {index}").lightness


def _recombine(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    lab = np.concatenate([lightness[..., None].astype(np.float32), ab.astype(np.float32)], -1)
    return finish(color.lab_to_rgb_in_gamut(lab), None, "uint8")


def _chroma(out: np.ndarray) -> np.ndarray:
    return color.rgb_to_lab(_unit_rgb(out))[..., 1:].astype(np.float32)


def _flow_frames(frames: Iterator[np.ndarray], colorizer: Any, reference: Any,
                 batch_size: int) -> Iterator[np.ndarray]:
    from .temporal import FlowPropagator, ShotDetector

    shots, propagator = ShotDetector(), FlowPropagator()
    index = 0
    for chunk in _chunks(frames, batch_size):
        for frame, out in zip(chunk, _batch(colorizer, chunk, reference)):
            lightness = _lightness(colorizer, frame, index)
            ab = propagator.step(lightness, _chroma(out), cut=shots(lightness))
            index += 1
            yield _recombine(lightness, ab)


# ------------------------------------------------------------------------- exemplar mode
def _exemplar_pair(backend: Any, keyframe_backend: str | None, options: dict[str, Any],
                   device: str, references: list[Any]) -> tuple[Any, Any]:
    """(backend colorizing frames from a reference, backend colorizing keyframes or None);
    names are checked before any model is built."""
    from .. import available, default_backend

    infos = {info.name: info for info in available()}
    name = backend if isinstance(backend, str) else None
    built = None if (backend is None or isinstance(backend, str)) else backend
    if name is not None and name not in infos:
        _build(name, options, device)  # UnknownBackendError with the list of backends
    info = built.info if built is not None else infos.get(name) if name else None
    takes_reference = info is not None and info.needs_reference
    keyer: Any = None
    if not references:
        keyer = keyframe_backend or (None if takes_reference else (built or name)) \
            or default_backend()
        if isinstance(keyer, str) and keyer in infos and infos[keyer].needs_reference:
            raise InputError(f"keyframe_backend {keyer!r} itself needs a reference: give "
                             "references (CLI: --reference) or an automatic keyframe backend")
    main = _build(backend, options, device) if takes_reference else _build("exemplar", {}, device)
    if isinstance(keyer, str):
        keyer = _build(keyer, options if keyer == name else {}, device)
    return main, keyer


def _closest(hists: list[np.ndarray], lightness: np.ndarray) -> int:
    from .temporal import lightness_histogram

    h = lightness_histogram(lightness)
    return int(np.argmin([np.abs(h - r).sum() for r in hists]))


def _exemplar_frames(frames: Iterator[np.ndarray], main: Any, keyer: Any,
                     references: list[Any], batch_size: int) -> Iterator[np.ndarray]:
    from .temporal import FlowPropagator, ShotDetector, lightness_histogram

    prepared = [_prepared(main, r) for r in references]
    ref_hists = [lightness_histogram(p.lab[..., 0]) if hasattr(p, "lab") else
                 lightness_histogram(color.rgb_to_lab(_unit_rgb(np.asarray(r)))[..., 0])
                 for p, r in zip(prepared, references)]
    shots, propagator = ShotDetector(), FlowPropagator()
    state: dict[str, Any] = {"ref": None, "fallback": False}
    index = 0

    def start_shot(frame: np.ndarray, lightness: np.ndarray) -> None:
        state["fallback"] = False
        if prepared:
            state["ref"] = prepared[_closest(ref_hists, lightness)]
            return
        key = keyer.colorize(frame)
        try:
            state["ref"] = main.prepare_reference(key[..., :3]) \
                if hasattr(main, "prepare_reference") else key[..., :3]
        except GrayscaleReferenceError:  # a colourless keyframe: this shot stays as keyed
            state["fallback"] = True

    for chunk in _chunks(frames, batch_size):
        lights = [_lightness(main, f, index + i) for i, f in enumerate(chunk)]
        cuts = [shots(lum) for lum in lights]
        start = 0
        while start < len(chunk):  # runs of frames within one shot
            stop = start + 1
            while stop < len(chunk) and not cuts[stop]:
                stop += 1
            if cuts[start] or state["ref"] is None and not state["fallback"]:
                start_shot(chunk[start], lights[start])
            run = chunk[start:stop]
            outs = keyer.colorize_batch(run) if state["fallback"] else \
                main.colorize_batch(run, reference=state["ref"])
            for j, out in enumerate(outs):
                ab = propagator.step(lights[start + j], _chroma(out), cut=cuts[start + j])
                yield _recombine(lights[start + j], ab)
            start = stop
        index += len(chunk)
