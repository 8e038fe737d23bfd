"""A backend's network run by ONNX Runtime or OpenVINO instead of torch, for CPU speed.

The ``runtime`` option (`colorplug.protocol.RUNTIMES`): ``"torch"`` (default) runs the
network as written; ``"onnx"`` and ``"openvino"`` run it exported to ONNX on the CPU. Only
the network is exported (what predicts chroma); the backend's pre- and post-processing stay
as they are, so the input's full-resolution lightness is kept exactly as with torch.

A backend describes its network once as an `OnnxGraph` (module, example inputs, names,
dynamic axes); `exported_network` exports it with ``torch.onnx.export`` the first time a
weights file is used and keeps the file in the weights cache, beside the converted weights
(``colorplug.cache.weights_dir()``), named ``NAME-SHA256[-SHAPE].onnx``: the SHA-256 of the
weights file the network was loaded from, and the input shape where the graph's shapes are
static. Later builds open the cached file without exporting. Files are written through a
temporary file renamed into place, so a reader never sees a partial export.

onnxruntime, openvino, onnx and onnxscript are imported only when a runtime is used; a
missing one is a ColorplugError naming the ``pip install "colorplug[...]"`` that brings it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .errors import BackendError, ColorplugError, DeviceError, InputError, OutputError
from .protocol import RUNTIMES

#: ONNX opset of the exports (torch's exporter supports 18 and later).
OPSET = 18
#: The packages each runtime needs at run time, and those the export needs.
RUN_PACKAGES = {"onnx": ("onnxruntime",), "openvino": ("openvino",)}
EXPORT_PACKAGES = ("onnx", "onnxscript")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


@dataclass(frozen=True)
class OnnxGraph:
    """What ``torch.onnx.export`` needs for a backend's network: the module (eval mode,
    on the CPU), example inputs, their names and the outputs' names, and ``dynamic_shapes``
    (torch.export's, keyed by the module's argument names) when sizes vary; None: the
    example inputs' shapes are the only ones the export takes."""

    module: Any
    inputs: tuple[Any, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_shapes: dict[str, Any] | None = None
    #: what the export is of, for messages ("backend 'ddcolor-tiny'")
    what: str = "the network"


def check_runtime(runtime: Any, backend: str) -> str:
    """`runtime` checked against `RUNTIMES`; anything else is an InputError naming the
    option and the values it takes."""
    if not isinstance(runtime, str) or runtime not in RUNTIMES:
        raise InputError(f"backend {backend!r}: option 'runtime' must be one of "
                         f"{', '.join(map(repr, RUNTIMES))}; got {runtime!r}")
    return runtime


def runtime_device(runtime: str, device: Any) -> Any:
    """The torch device a backend uses with `runtime`: `device` as usual for torch; the
    CPU for onnx/openvino ("auto" means the CPU there), any other device a DeviceError."""
    import torch

    from .device import resolve_device

    if runtime == "torch":
        return resolve_device(device)
    if device in (None, "auto"):
        return torch.device("cpu")
    try:
        kind = torch.device(device).type if isinstance(device, (str, torch.device)) else None
    except RuntimeError:
        kind = None
    if kind in (None, "cpu"):
        return resolve_device(device)  # its own errors for what is not a device
    raise DeviceError(f"runtime={runtime!r} runs the network on the CPU; device={device!r} "
                      "needs runtime='torch' (or pass device='cpu')")


def _missing(packages: Sequence[str]) -> list[str]:
    import importlib

    missing = []
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def require(runtime: str | None, *, export: bool = False) -> None:
    """Raise a ColorplugError naming the install command when a package `runtime` needs
    (None: none) or, with `export`, the exporter's onnx and onnxscript cannot be imported."""
    wanted = list(RUN_PACKAGES.get(runtime, ())) + (list(EXPORT_PACKAGES) if export else [])
    missing = _missing(wanted)
    if missing:
        extra = runtime if runtime in RUN_PACKAGES else "onnx"
        doing = (f"runtime={runtime!r}" if runtime in RUN_PACKAGES and
                 set(missing) & set(RUN_PACKAGES[runtime]) else "exporting the network to ONNX")
        raise ColorplugError(f"{doing} needs {', '.join(missing)}, which is not installed: "
                             f"pip install \"colorplug[{extra}]\"")


def cache_path(name: str, weights_sha256: str, shape: str | None = None) -> Path:
    """Where the export of network `name` with weights of SHA-256 `weights_sha256` (and
    static input `shape`, e.g. "512x512") is kept: the weights cache."""
    from .cache import weights_dir

    if not _NAME_RE.match(name):
        raise ValueError(f"export name {name!r} must be lowercase letters, digits, '.-_'")
    if not re.fullmatch(r"[0-9a-f]{64}", weights_sha256 or ""):
        raise ValueError(f"weights_sha256 must be 64 hex digits; got {weights_sha256!r}")
    suffix = f"-{shape}" if shape else ""
    return weights_dir() / f"{name}-{weights_sha256}{suffix}.onnx"


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """onnxscript's optimiser logs a warning per multi-output op it does not fold (dozens
    for DDColor): not the user's concern, so quiet while exporting."""
    logger = logging.getLogger("onnxscript")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export(graph: OnnxGraph, target: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Export `graph` with ``torch.onnx.export`` to `target` (one self-contained .onnx
    file), through a temporary file in its folder renamed into place. Without `overwrite`
    an existing file is never replaced (FileExistsError)."""
    import torch

    from .files import move_into_place, temporary_beside

    require(None, export=True)
    target = Path(target)
    if not overwrite and (target.exists() or target.is_symlink()):
        raise FileExistsError(f"{str(target)!r} exists; pass overwrite to replace it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_beside(target)
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                graph.module.eval(), tuple(graph.inputs), dynamo=True, verbose=False,
                external_data=False, opset_version=OPSET,
                input_names=list(graph.input_names), output_names=list(graph.output_names),
                dynamic_shapes=graph.dynamic_shapes)
            program.save(str(tmp), external_data=False)
        move_into_place(tmp, target, overwrite=overwrite)
    except (FileExistsError, ColorplugError):
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackendError(f"{graph.what}: torch.onnx.export failed ({type(exc).__name__}: "
                           f"{first[:300]})") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


class ExportedNetwork:
    """An exported network run on the CPU by ONNX Runtime (``runtime="onnx"``) or OpenVINO
    (``"openvino"``), with as many threads as torch uses: float32 arrays in (in the graph's
    input order), float32 arrays out; non-finite outputs are a BackendError."""

    def __init__(self, path: str | os.PathLike, runtime: str, *, backend: str,
                 threads: int | None = None) -> None:
        import torch

        require(runtime)
        self.path, self.runtime, self.backend = Path(path), runtime, backend
        self.threads = int(threads or torch.get_num_threads())
        if runtime == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3  # errors only
            # no pre-planned block for all intermediates: DDColor-T at 512² peaked 0.5 GB
            # higher with it, at the same speed (benchmarks/runtime_speed.py)
            options.enable_mem_pattern = False
            self._session = ort.InferenceSession(str(self.path), options,
                                                 providers=["CPUExecutionProvider"])
            self.input_names = [i.name for i in self._session.get_inputs()]
        elif runtime == "openvino":
            import openvino as ov

            # float32 stated: on CPUs with bf16 units OpenVINO's default is bf16
            self._compiled = ov.Core().compile_model(
                str(self.path), "CPU", {"INFERENCE_NUM_THREADS": self.threads,
                                        "INFERENCE_PRECISION_HINT": "f32"})
            self.input_names = [i.any_name for i in self._compiled.inputs]
        else:
            raise InputError(f"runtime {runtime!r} does not run exported networks; use "
                             "'onnx' or 'openvino'")

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run the network once; outputs in the graph's order."""
        if len(inputs) != len(self.input_names):
            raise ValueError(f"the exported network takes {len(self.input_names)} inputs "
                             f"({', '.join(self.input_names)}); got {len(inputs)}")
        arrays = [np.ascontiguousarray(x, dtype=np.float32) for x in inputs]
        if self.runtime == "onnx":
            outputs = self._session.run(None, dict(zip(self.input_names, arrays)))
        else:  # a request per call: a compiled model's own request is not thread-safe
            request = self._compiled.create_infer_request()
            result = request.infer(arrays)
            outputs = [np.array(result[o], copy=True) for o in self._compiled.outputs]
        for out in outputs:
            if not np.isfinite(out).all():
                raise BackendError(f"backend {self.backend!r} (runtime={self.runtime!r}): the "
                                   "network gave non-finite values (NaN or inf); the weights "
                                   "file is probably damaged or not this model's")
        return outputs


def exported_network(runtime: str, graph: Callable[[], OnnxGraph], *, name: str,
                     weights_sha256: str, shape: str | None = None,
                     backend: str) -> ExportedNetwork:
    """The network of `graph` run by `runtime`, exported once per weights file: from the
    cache when there (`cache_path`), else exported now (`graph` is called only then, so a
    backend builds its torch network only for the export)."""
    require(runtime)
    path = cache_path(name, weights_sha256, shape)
    fresh = not path.is_file()
    if fresh:
        require(runtime, export=True)
        export(graph(), path, overwrite=True)
    try:
        return ExportedNetwork(path, runtime, backend=backend)
    except ColorplugError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged cached file: export it again
        if fresh:
            raise BackendError(f"backend {backend!r}: {runtime} cannot load the network "
                               f"exported to {str(path)!r}: {exc}") from exc
        warnings.warn(f"the cached export {str(path)!r} could not be loaded ({exc}); it is "
                      "exported again", RuntimeWarning, stacklevel=2)
        require(runtime, export=True)
        export(graph(), path, overwrite=True)
        return ExportedNetwork(path, runtime, backend=backend)
