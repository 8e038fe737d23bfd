"""The "Colorize" dock widget: choose a layer and a backend, run in a worker thread."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, SpinBox

import colorplug

from . import _core
from ._core import (colorize_multiscale, colorize_stack, colorize_time, multiscale_steps,
                    plane_shape, with_pyramid)
from ._hints import PlaneHints
from ._messages import napari_message
from ._train import TrainSection
from colorplug.advice import FLUORESCENCE_COLORMAPS, automatic, photo_model_note
from colorplug.gl_guard import preload_triton
from colorplug.protocol import RUNTIMES

if TYPE_CHECKING:
    import napari

SYNC_ENV = "COLORPLUG_NAPARI_SYNC"  # "1": run in the calling thread (tests, debugging)
DEVICES = ["auto", "cpu", "cuda"]
REFERENCE_PIXELS = 2048 * 2048  # a multiscale reference: its largest level up to this size
RESULT_OF = "colorplug_result_of"  # a result layer's metadata key: id() of its source layer
TEMPORAL = ["flow", "exemplar", "off"]  # colorplug.video modes, most useful first


def levels_of(layer: Any) -> list[Any]:
    """A layer's data as a list of levels, full resolution first (one for a plain layer)."""
    if getattr(layer, "multiscale", False):
        return [layer.data[i] for i in range(len(layer.data))]
    return [layer.data]


def size_option(info: Any) -> tuple[str, int] | None:
    """The option a backend takes for the size its network sees, and its step: only an
    option the backend declares (``BackendInfo.options``), else the built-ins' marker."""
    if info is None:
        return None
    declared = info.options or {}
    multiple = int(info.extra.get("size_multiple", 8))
    for name in ("working_size", "input_size"):
        if name in declared:
            return name, multiple
    if info.extra.get("configurable_working_size") and info.options is None:
        return "working_size", multiple
    return None


@dataclass
class _Failure:
    message: str


class ColorizeWidget(Container):
    """Colorize an image layer (2D, or nD slice by slice) with any colorplug backend."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        # Before any backend can import torch._dynamo: the viewer's GL has already loaded
        # Mesa's libLLVM, and triton loaded plainly after it segfaults (colorplug.gl_guard).
        # Here on the main thread, before a worker thread runs colorplug.get.
        preload_triton()
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.worker: Any = None
        self.result_layer: Any = None
        self.stages: list[tuple] = []  # ("loading", backend), ("plane", n): the last run
        self._last_size: dict[str, int] = {}  # backend -> the size last used with it
        self._infos = {info.name: info for info in colorplug.available()}
        names = list(self._infos)
        default = colorplug.default_backend()
        self.image = ComboBox(label="Image", choices=self._image_choices, nullable=True)
        self.backend = ComboBox(label="Backend", choices=names,
                                value=default if default in names else (names or [None])[0])
        self.description = Label(label="")
        self.weights = ComboBox(label="Weights", choices=self._weights_choices,
                                tooltip="the backend's shipped weights (default) or yours, "
                                "trained below or with `colorplug train --name`")
        self.reference = ComboBox(label="Reference", choices=self._image_choices, nullable=True)
        self.hints = ComboBox(label="Hints", choices=self._hint_choices, nullable=True)
        self.device = ComboBox(label="Device", choices=DEVICES, value="auto")
        self.runtime = ComboBox(label="Runtime", choices=list(RUNTIMES),
                                value="torch",
                                tooltip="what runs the network: torch, or the network exported "
                                "to ONNX and run on the CPU by ONNX Runtime (onnx) or OpenVINO "
                                "(openvino), often faster; exported once per weights file")
        self.working_size = SpinBox(label="Working size", min=32, max=4096, step=8, value=256)
        self.time_axis = CheckBox(label="Time axis", value=False,
                                  tooltip="the first axis of the layer is time: colorize it as "
                                  "a video, with the temporal mode below")
        self.temporal = ComboBox(label="Temporal", choices=TEMPORAL, value="flow",
                                 tooltip="flow: previous colours follow the motion; exemplar: "
                                 "each shot from a keyframe (the Reference, else its first "
                                 "frame); off: frame by frame")
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.train_section = TrainSection(
            napari_viewer, base=lambda: (self.backend.value, self.weights.value or "default"),
            on_done=self._use_new_weights)
        self.extend([self.image, self.backend, self.description, self.weights, self.reference,
                     self.hints, self.device, self.runtime, self.working_size, self.time_axis,
                     self.temporal,
                     self.run_button, self.cancel_button, self.train_section])
        self.temporal.visible = False
        self.time_axis.changed.connect(self._on_time_axis)
        # Gallery: backends that take references from a folder when none is chosen
        self.gallery = FileEdit(label="Gallery", mode="d", value="",
                                tooltip="folder of colour photos to take references from when "
                                        "no Reference is chosen (empty: the shipped gallery)")
        self.insert(self.index(self.hints) + 1, self.gallery)
        self.description.native.setWordWrap(True)
        self.native.setMaximumWidth(420)
        self.backend.changed.connect(self._on_backend)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        for event in ("inserted", "removed", "reordered"):
            getattr(self.viewer.layers.events, event).connect(self._refresh_layers)
        self._refresh_layers()
        self._on_backend()
        self._closed = False
        self.native.destroyed.connect(self._on_destroyed)

    # ---------------------------------------------------------------- lifetime
    def _on_destroyed(self, _obj: Any = None) -> None:
        """The widget (or its viewer) was closed: stop the worker at its next check and let
        it finish quietly; its late signals then touch nothing that is gone."""
        self._closed = True
        if self.worker is not None:
            self.worker.quit()
        self.train_section.close_section()

    # ---------------------------------------------------------------- choices
    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _weights_choices(self, _widget: Any = None) -> list[str]:
        """"default" and the user's own weights made for the chosen backend."""
        from colorplug.user_weights import listing

        backend = self.backend.value if hasattr(self, "backend") else None
        return ["default"] + [e.name for e in listing() if e.backend == backend]

    def _use_new_weights(self, backend: str, name: str) -> None:
        """After training: the backend trained and the new weights, chosen for the next Run."""
        if self.backend.value != backend:
            self.backend.value = backend
        self.weights.reset_choices()
        self.weights.value = name
        self.weights.visible = True  # "default" and the new weights: a choice now

    def _hint_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        """Layers the user can paint colour on: Points, Shapes, Labels, RGB images."""
        from napari.layers import Image, Labels, Points, Shapes

        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, (Points, Shapes, Labels))
                or (isinstance(layer, Image) and layer.rgb)]

    def _refresh_layers(self, _event: Any = None) -> None:
        for box in (self.image, self.reference, self.hints):
            box.reset_choices()
        self.train_section.refresh()
        if self.image.value is None:
            candidates = [v for _, v in self._image_choices() if not v.rgb] or \
                         [v for _, v in self._image_choices()]
            if candidates:
                self.image.value = candidates[-1]
        # The Reference and Hints choosers stay as the user left them (default: none):
        # filling them with the newest RGB layer made backends take colours from the
        # previous result without being asked.

    def _on_backend(self, _event: Any = None) -> None:
        info = self._infos.get(self.backend.value)
        self.description.value = info.description if info else ""
        self.weights.reset_choices()
        self.weights.value = "default"
        self.weights.visible = len(self.weights.choices) > 1
        self.reference.visible = bool(info and info.accepts_reference)
        self.hints.visible = bool(info and info.supports_hints)
        self.gallery.visible = bool(info and "gallery" in (info.options or {}))
        # the runtimes this backend offers (BackendInfo.runtimes); others run with torch
        runtimes = list(info.runtimes) if info else ["torch"]
        self.runtime.visible = len(runtimes) > 1
        if self.runtime.value not in runtimes:
            self.runtime.value = "torch"
        # the size option this backend has, if any, at the value last used with it
        previous = getattr(self, "_shown_size_of", None)
        if previous is not None and size_option(self._infos.get(previous)) is not None:
            self._last_size[previous] = int(self.working_size.value)
        self._shown_size_of = self.backend.value
        option = size_option(info)
        self.working_size.visible = option is not None
        if option is not None:
            _name, multiple = option
            self.working_size.step = multiple
            start = info.working_size if isinstance(info.working_size, int) else 256
            self.working_size.value = self._last_size.get(self.backend.value, start)

    def _on_time_axis(self, _event: Any = None) -> None:
        self.temporal.visible = bool(self.time_axis.value)

    # ---------------------------------------------------------------- running
    def _request(self) -> dict[str, Any]:
        """Everything a run needs, read from the widget; raises ColorplugError if unusable."""
        layer = self.image.value
        if layer is None:
            raise colorplug.InputError("no image layer: add a grayscale image layer first")
        name = self.backend.value
        info = self._infos.get(name)
        if info is None:
            raise colorplug.UnknownBackendError(f"no backend selected (available: "
                                                f"{', '.join(self._infos) or 'none'})")
        rgb = bool(layer.rgb)
        levels = levels_of(layer)
        multiscale = bool(getattr(layer, "multiscale", False))
        # a multiscale layer: its full-resolution level (data coordinates are level 0's)
        lead, (h, w) = plane_shape(levels[0], rgb)
        reference = hints = None
        if info.accepts_reference and self.reference.value is not None:
            ref = self.reference.value
            ref_levels = levels_of(ref)  # colours, not detail: a level of moderate size
            data = next((lv for lv in ref_levels
                         if int(np.prod(lv.shape[-3:-1] if ref.rgb else lv.shape[-2:]))
                         <= REFERENCE_PIXELS), ref_levels[-1])
            lead_ref = data.ndim - (3 if ref.rgb else 2)
            reference = np.asarray(data[(0,) * lead_ref]) if lead_ref > 0 else np.asarray(data)
            if not ref.rgb:
                raise colorplug.InputError(f"the reference layer {ref.name!r} is grayscale; "
                                           "choose an RGB (colour) image layer as Reference")
        keyframed = bool(self.time_axis.value) and self.temporal.value == "exemplar"
        if info.needs_reference and reference is None and not keyframed:
            raise colorplug.MissingReferenceError(f"backend {name!r} needs a reference: "
                                                  "choose an RGB image layer as Reference")
        if getattr(info, "needs_hints", False) and self.hints.value is None:
            raise colorplug.MissingHintsError(f"backend {name!r} needs colour hints")
        if info.supports_hints and self.hints.value is not None:
            if getattr(self.hints.value, "multiscale", False):
                raise colorplug.InputError(f"the hints layer {self.hints.value.name!r} is "
                                           "multiscale: paint hints on a Points, Shapes or "
                                           "Labels layer")
            if multiscale and h * w > _core.PLANE_PIXELS:
                # hints are full-resolution maps: such a plane cannot go in tiles
                raise colorplug.InputError(
                    f"colour hints work on planes up to {_core.PLANE_PIXELS} pixels; the layer "
                    f"{layer.name!r} has {w}x{h} planes at full resolution: clear Hints")
            hints = PlaneHints(self.hints.value, layer, (h, w), self.viewer.dims.point)
            if hints.gray:
                from napari.utils.notifications import show_warning

                show_warning(f"the hints layer {self.hints.value.name!r} has white or gray "
                             "hint colours: those areas will come out gray. Give the hints "
                             "a colour (the layer's face colour or label colour).")
        time = bool(self.time_axis.value)
        if time and not lead:
            raise colorplug.InputError(f"the layer {layer.name!r} has no time axis (it is a "
                                       "single image): untick Time axis")
        if time and hints is not None:
            raise colorplug.InputError("colour hints are given per plane: untick Time axis "
                                       "or clear Hints")
        own_weights = self.weights.value not in (None, "default")
        cmap = str(getattr(getattr(layer, "colormap", None), "name", "gray"))
        if not rgb and cmap in FLUORESCENCE_COLORMAPS and automatic(info) and \
                not own_weights and reference is None and hints is None:
            from napari.utils.notifications import show_info

            show_info(photo_model_note(f"a fluorescence channel (the layer {layer.name!r} is "
                                       f"shown in {cmap})", name, "napari"))
        options: dict[str, Any] = {"device": self.device.value}
        if self.runtime.value != "torch" and self.runtime.value in info.runtimes:
            options["runtime"] = self.runtime.value
        if own_weights:
            options["weights"] = self.weights.value
        option = size_option(info)
        if option is not None:
            # Never above the image's own size: a 4096 working size on a 256 image costs
            # 15x the time for no detail. The bound is a multiple of the backend's step and
            # at least 64 (the largest minimum of the built-ins); a smaller value the user
            # typed is kept, and one the backend refuses is its own clear error.
            size_name, multiple = option
            bound = max(64, -(-max(h, w) // multiple) * multiple)
            options[size_name] = min(int(self.working_size.value), bound)
        folder = str(self.gallery.value or "").strip()
        if "gallery" in (info.options or {}) and reference is None and folder not in ("", "."):
            options["gallery"] = folder
        if not rgb:  # what the user sees is what gets colorized
            options["intensity_range"] = tuple(float(v) for v in layer.contrast_limits)
        total = int(np.prod(lead)) if lead else 1
        if multiscale:  # one step per plane or tile, and per plane of each lower level
            total = multiscale_steps([lv.shape for lv in levels], rgb, tiles=not time)
        return {"layer": layer, "backend": name, "rgb": rgb, "reference": reference,
                "hints": hints, "temporal": self.temporal.value if time else None,
                "options": options, "total": total,
                "levels": levels if multiscale else None}

    def _job(self, req: dict[str, Any]):
        """Generator run by the worker: ("loading", backend) first, then ("plane", n) after
        each plane (for a multiscale layer: each plane or tile, and each plane of the lower
        levels, n counting steps); returns the result, a list of levels for a multiscale
        layer (or a _Failure)."""
        try:
            yield ("loading", req["backend"])
            colorizer = self._colorizer(req["backend"], req["options"])
            unhinted = None
            if req["hints"] is not None:  # planes without hints stay gray, not an error
                unhinted = self._colorizer("gray", {k: v for k, v in req["options"].items()
                                                    if k == "intensity_range"})
            levels = req.get("levels")
            if req.get("temporal"):
                planes = colorize_time(
                    req["layer"].data if levels is None else levels[0], colorizer,
                    rgb=req["rgb"], temporal=req["temporal"],
                    references=[] if req["reference"] is None else [req["reference"]],
                    device=req["options"]["device"])
                if levels is not None:
                    planes = with_pyramid(planes, [lv.shape for lv in levels], req["rgb"])
            elif levels is not None:
                planes = colorize_multiscale(
                    levels, colorizer, rgb=req["rgb"], reference=req["reference"],
                    hints=req["hints"], unhinted=unhinted)
            else:
                planes = colorize_stack(
                    req["layer"].data, colorizer, rgb=req["rgb"], reference=req["reference"],
                    hints=req["hints"], unhinted=unhinted)
            for done, _total, result in planes:
                if result is not None:
                    return result
                yield ("plane", done)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
            return _Failure(napari_message(exc, req["backend"]))
        return _Failure("nothing was colorized")

    def _colorizer(self, backend: str, options: dict[str, Any]) -> Any:
        """The model for (backend, options, device), kept across runs: it is rebuilt only
        when one of those changes. The display range (contrast limits) changes with every
        layer; a ChromaColorizer takes it as an attribute, others are keyed by it too."""
        from colorplug.pipeline import ChromaColorizer

        cache: dict = self.__dict__.setdefault("_models", {})
        display = options.get("intensity_range")
        rest = tuple(sorted((k, repr(v)) for k, v in options.items() if k != "intensity_range"))
        colorizer = cache.get((backend, rest)) or cache.get((backend, rest, repr(display)))
        if colorizer is None:
            if backend != "gray":  # keep one model (plus gray): models can be large
                for old in [k for k in cache if k[0] != "gray"]:
                    del cache[old]
            colorizer = colorplug.get(backend, **options)
            chroma = isinstance(getattr(colorizer, "inner", colorizer), ChromaColorizer)
            cache[(backend, rest) if chroma else (backend, rest, repr(display))] = colorizer
        if isinstance(getattr(colorizer, "inner", colorizer), ChromaColorizer):
            colorizer.intensity_range = display
        return colorizer

    def _on_stage(self, req: dict[str, Any], pbar: Any, stage: tuple) -> None:
        """Progress on the main thread: a "loading model" step, then one step per plane (or
        tile); ("plane", n) says n steps are done, so a plane that needed no tiles may
        advance several."""
        if self._closed:
            return
        kind, value = stage
        self.stages.append(stage)
        if kind == "loading":
            pbar.set_description(f"loading model ({value})")
            pbar.update(1)
        else:
            pbar.set_description(f"colorize ({req['backend']})")
            pbar.update(max(0, 1 + int(value) - pbar.n))

    def run(self, _event: Any = None) -> None:
        """Start colorizing the chosen layer (in a worker thread unless SYNC_ENV is set)."""
        from napari.utils import progress
        from napari.utils.notifications import show_error

        try:
            req = self._request()
        except colorplug.ColorplugError as exc:
            show_error(napari_message(exc, self.backend.value))
            return
        pending = self._pending_download(req["backend"], req["options"])
        if pending is not None:
            if not self._ask_download(req["backend"], pending):
                from napari.utils.notifications import show_info

                show_info(f"not downloaded: the weights {pending.public_name!r} are needed for "
                          f"{req['backend']!r}; choose another Backend, or run again and "
                          "answer Yes")
                return
            req["options"]["download"] = True
        self.result_layer = None
        self.stages: list[tuple] = []
        pbar = progress(total=req["total"] + 1, desc=f"loading model ({req['backend']})")
        if os.environ.get(SYNC_ENV, "") == "1":
            gen = self._job(req)
            with pbar:
                while True:
                    try:
                        self._on_stage(req, pbar, next(gen))
                    except StopIteration as stop:
                        self._finish(req, stop.value)
                        break
            return
        from napari.qt.threading import thread_worker

        worker = thread_worker(self._job, start_thread=False)(req)
        worker.yielded.connect(lambda stage: self._on_stage(req, pbar, stage))
        worker.returned.connect(lambda result: self._finish(req, result))
        worker.aborted.connect(self._cancelled)
        worker.finished.connect(pbar.close)
        worker.finished.connect(self._idle)
        self.worker = worker
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        worker.start()

    def _pending_download(self, backend: str, options: dict[str, Any]) -> Any:
        """The published weights `backend` needs that are not in the cache yet (None when
        there are none, they are cached, or the user chose weights of their own)."""
        from colorplug import cache

        info = self._infos.get(backend)
        declared = info.extra.get("weights") if info is not None else None
        if not isinstance(declared, str) or "weights" in options:
            return None
        try:
            spec = cache.registered_spec(declared, missing_ok=True)
        except colorplug.ColorplugError:
            return None
        if spec is None or spec.url is None or cache.is_cached(spec):
            return None
        return spec

    def _ask_download(self, backend: str, spec: Any) -> bool:
        """Ask before downloading (size, licence, source): nothing large comes unasked."""
        from qtpy.QtWidgets import QMessageBox

        from colorplug import cache

        box = QMessageBox(self.native)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Download weights? (colorplug)")
        licence = spec.license or "licence not given"
        box.setText(f"Backend {backend!r} needs the weights {spec.public_name!r}: "
                    f"{cache.describe_size(spec.size)}, {licence}.\n\nDownload them now "
                    f"from {spec.url}?")
        box.setInformativeText(f"They are kept in {cache.weights_dir()} and checked against "
                               "their SHA-256 before use; `colorplug weights list` shows them.")
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        self.download_question = box  # what is being asked, while it is open
        try:
            return box.exec() == QMessageBox.StandardButton.Yes
        finally:
            self.download_question = None

    def cancel(self, _event: Any = None) -> None:
        """Stop between planes; no layer is added for a cancelled run."""
        if self.worker is not None:
            self.worker.quit()

    def _cancelled(self) -> None:
        from napari.utils.notifications import show_info

        if self._closed:
            return
        show_info("colorize cancelled: no layer was added")

    def _idle(self) -> None:
        self.worker = None
        if self._closed:
            return
        self.run_button.enabled = True
        self.cancel_button.enabled = False

    def _finish(self, req: dict[str, Any], result: Any) -> None:
        from napari.utils.notifications import show_error

        if self._closed:
            return
        if isinstance(result, _Failure) or result is None:
            show_error(result.message if result is not None else "colorize failed")
            return
        layer = req["layer"]
        out = self.viewer.add_image(
            result, rgb=True, multiscale=req.get("levels") is not None,
            name=f"{layer.name} (colorized: {req['backend']}"
            + (f", {req['temporal']})" if req.get("temporal") else ")"),
            # the source's whole transform, so the result sits exactly on it
            scale=layer.scale, translate=layer.translate, rotate=layer.rotate,
            shear=layer.shear, affine=layer.affine, metadata={RESULT_OF: id(layer)})
        # Above its source and its earlier results (the newest is the one seen), under the
        # hint layers (Points, Shapes...) that sit above them, which stay visible.
        layers = self.viewer.layers
        if layer in layers:
            above = layers.index(layer) + 1
            while (above < len(layers) and layers[above] is not out
                   and layers[above].metadata.get(RESULT_OF) == id(layer)):
                above += 1
            layers.move(layers.index(out), above)
        self.result_layer = out
