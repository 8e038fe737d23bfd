"""The Colorize widget's "Train on your images" section: fine-tune the chosen backend's
weights on colour image layers (or a folder) in a worker thread, then use them by name.

The run goes through `colorplug.train.finetune.finetune`, the same path as ``colorplug
train BACKEND --from WEIGHTS --name NAME``. Progress shows the val PSNR after each epoch;
Cancel ends training within a step and keeps the best validated weights (the base competes,
so they are never worse on val). When done, the new weights are chosen in the Weights box
and a before/after of one val image is added as layers.
"""
from __future__ import annotations

import queue
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
from magicgui.widgets import (Container, FileEdit, FloatSpinBox, Label, LineEdit, PushButton,
                              Select)

import colorplug

from ._messages import napari_message

#: Planes of one nD colour layer used for training at most (each plane is one image).
MAX_PLANES_PER_LAYER = 200


def layer_images(layer: Any) -> list[np.ndarray]:
    """A colour image layer's planes as 8-bit RGB images (an nD layer: every plane)."""
    from colorplug.image import intensity_to_unit

    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    if len(data.shape) < 3 or data.shape[-1] not in (3, 4):
        raise colorplug.InputError(f"the layer {layer.name!r} is not a colour (RGB) image")
    lead = data.shape[:-3]
    count = int(np.prod(lead)) if lead else 1
    images = []
    for i in range(min(count, MAX_PLANES_PER_LAYER)):  # plane by plane (dask, zarr: lazily)
        index = np.unravel_index(i, lead) if lead else ()
        plane = np.asarray(data[tuple(index)])
        images.append(np.rint(intensity_to_unit(plane[..., :3], "dtype") * 255).astype(np.uint8))
    return images


class TrainSection(Container):
    """Pick colour layers or a folder, a name and minutes; Train fine-tunes the backend and
    weights chosen above (`base()` says which) and hands the result to `on_done`."""

    def __init__(self, viewer: Any, base: Callable[[], tuple[str, str]],
                 on_done: Callable[[str, str], None]) -> None:
        super().__init__(labels=True, label="")
        self.viewer = viewer
        self.base = base
        self.on_done = on_done
        self.worker: Any = None
        self.stop_event = threading.Event()
        self.records: list[dict] = []
        self.result: Any = None
        self.title = Label(value="<b>Train on your images</b>")
        self.layers = Select(label="Colour layers", choices=self._colour_layers,
                             tooltip="colour photos of the kind you will colorize (each plane "
                             "of a stack is one image); or give a Folder")
        self.folder = FileEdit(label="Folder", mode="d", value="",
                               tooltip="a folder of colour photos (used when no layer is picked)")
        self.weights_name = LineEdit(label="Name", value="",
                             tooltip="your weights are kept under this name (lowercase "
                             "letters, digits, - _ .)")
        self.minutes = FloatSpinBox(label="Minutes", min=0.05, max=600, step=1, value=5)
        self.status = Label(value="")
        self.train_button = PushButton(text="Train")
        self.cancel_button = PushButton(text="Stop (keep best)", enabled=False)
        self.extend([self.title, self.layers, self.folder, self.weights_name, self.minutes,
                     self.train_button, self.cancel_button, self.status])
        self.train_button.changed.connect(self.train)
        self.cancel_button.changed.connect(self.cancel)
        self._closed = False

    def _colour_layers(self, _widget: Any = None) -> list[tuple[str, Any]]:
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Image) and layer.rgb]

    def refresh(self) -> None:
        self.layers.reset_choices()

    # ------------------------------------------------------------------ running
    def _request(self) -> dict[str, Any]:
        """What a run needs, read from the section; a ColorplugError if unusable."""
        from colorplug.train.finetune import FINETUNABLE
        from colorplug.user_weights import check_name, find, taken_by_others

        backend, weights = self.base()
        if backend not in FINETUNABLE:
            raise colorplug.InputError(f"backend {backend!r} cannot be trained here; choose "
                                       f"one of {', '.join(FINETUNABLE)} as Backend")
        name = str(self.weights_name.value).strip()
        if not name:
            raise colorplug.InputError("give your weights a Name")
        check_name(name, flag="Name")
        clash = taken_by_others(name) or (f"your weights {name!r} exist" if find(name) else None)
        if clash:
            raise colorplug.WeightsError(f"Name {name!r}: {clash}; choose another name")
        layers = list(self.layers.value or [])
        folder = str(self.folder.value or "").strip()
        if not layers and folder in ("", "."):
            raise colorplug.InputError("pick colour image layers (or a Folder of colour "
                                       "photos) to train on")
        images = [img for layer in layers for img in layer_images(layer)]
        return {"backend": backend, "weights": weights, "name": name, "images": images,
                "folder": None if layers else folder, "minutes": float(self.minutes.value)}

    def _job(self, req: dict[str, Any]):
        """Generator run by the worker: each epoch's record as it comes, then the result."""
        from colorplug.image import write_image
        from colorplug.train.finetune import finetune

        work = None
        try:
            data = req["folder"]
            if data is None:  # the layers' planes as files, in a folder colorplug made
                work = Path(tempfile.mkdtemp(prefix="colorplug-train-"))
                for i, img in enumerate(req["images"]):
                    write_image(work / f"layer_{i:04d}.png", img)
                data = str(work)
            records: queue.Queue = queue.Queue()
            outcome: dict[str, Any] = {}

            def run() -> None:
                try:
                    outcome["result"] = finetune(
                        req["backend"], data, name=req["name"], base=req["weights"],
                        minutes=req["minutes"], progress=False, on_record=records.put,
                        stop=self.stop_event.is_set)
                except BaseException as exc:  # noqa: BLE001 - reported in the widget
                    outcome["error"] = exc

            thread = threading.Thread(target=run, name="colorplug-train", daemon=True)
            thread.start()
            while thread.is_alive() or not records.empty():
                try:
                    yield records.get(timeout=0.2)
                except queue.Empty:
                    continue
            if "error" in outcome:
                return napari_message(outcome["error"], req["backend"])
            result = outcome["result"]
            try:
                pair = self._before_after(req, result)
            except Exception:  # noqa: BLE001 - the weights are kept; the pictures are extra
                pair = None
            return {"result": result, "before_after": pair}
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
            return napari_message(exc, req["backend"])
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)

    @staticmethod
    def _before_after(req: dict[str, Any], result: Any) -> tuple | None:
        """(gray, base's colours, the new weights' colours, truth) of the first val image."""
        from colorplug import evaluate as ev
        from colorplug.image import read_image

        val_list = Path(result.summary["out"]).with_suffix(".val.txt")
        names = [n for n in val_list.read_text().splitlines() if n] if val_list.is_file() else []
        source = req["folder"]
        if not names:
            return None
        if source is None:
            index = int(names[0].split("_")[1].split(".")[0])
            truth = req["images"][index]
        else:
            from colorplug.image import find_images

            found = [p for p in find_images(source) if p.name == names[0]]
            if not found:
                return None
            truth = read_image(found[0])[..., :3]
        gray = ev.gray_input(truth)
        before = colorplug.get(req["backend"], weights=None if req["weights"] == "default"
                               else req["weights"]).colorize(gray)
        after = colorplug.get(req["backend"], weights=req["name"]).colorize(gray)
        return names[0], before, after, truth

    def train(self, _event: Any = None) -> None:
        """Start fine-tuning in a worker thread."""
        from napari.qt.threading import thread_worker
        from napari.utils import progress
        from napari.utils.notifications import show_error

        try:
            req = self._request()
        except colorplug.ColorplugError as exc:
            show_error(napari_message(exc, self.base()[0]))
            return
        self.stop_event.clear()
        self.records = []
        self.result = None
        seconds = max(1, int(round(req["minutes"] * 60)))
        pbar = progress(total=seconds, desc=f"train {req['name']} (validating the base)")
        worker = thread_worker(self._job, start_thread=False)(req)
        worker.yielded.connect(lambda record: self._on_record(pbar, record))
        worker.returned.connect(lambda result: self._finish(req, result))
        worker.finished.connect(pbar.close)
        worker.finished.connect(self._idle)
        self.worker = worker
        self.train_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = "validating the base weights..."
        worker.start()

    def _on_record(self, pbar: Any, record: dict) -> None:
        if self._closed:
            return
        self.records.append(record)
        psnr = record.get("val_psnr")
        text = f"epoch {record['epoch']}" + (f": val PSNR {psnr:.2f} dB" if psnr else "")
        pbar.set_description(f"train ({text})")
        pbar.update(max(0, min(pbar.total, int(record.get("elapsed_s", 0))) - pbar.n))
        self.status.value = text

    def cancel(self, _event: Any = None) -> None:
        """End training within a step; the best validated weights are kept."""
        self.stop_event.set()
        self.status.value = "stopping: keeping the best weights so far..."

    def close_section(self) -> None:
        """The widget is going away: stop training (the best so far is still kept)."""
        self._closed = True
        self.stop_event.set()

    def _idle(self) -> None:
        self.worker = None
        if self._closed:
            return
        self.train_button.enabled = True
        self.cancel_button.enabled = False

    def _finish(self, req: dict[str, Any], outcome: Any) -> None:
        from napari.utils.notifications import show_error, show_info

        if self._closed:
            return
        if isinstance(outcome, str):
            self.status.value = "training failed"
            show_error(outcome)
            return
        result = outcome["result"]
        self.result = result
        kept = result.card.get("kept", {})
        psnr = kept.get("val_psnr")
        self.status.value = (f"kept {result.name!r}" + (f": val PSNR {psnr:.2f} dB" if psnr
                                                         else ""))
        pair = outcome["before_after"]
        if pair is not None:
            image_name, before, after, truth = pair
            self.viewer.add_image(before, rgb=True,
                                  name=f"{image_name} before ({req['weights']})")
            self.viewer.add_image(after, rgb=True, name=f"{image_name} after ({result.name})")
        show_info(f"trained your weights {result.name!r}; they are chosen under Weights")
        self.on_done(req["backend"], result.name)
