"""The contract between colorplug and every backend: `Colorizer` and `BackendInfo`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


#: Options every ChromaColorizer backend takes (see `colorplug.image`).
COMMON_OPTIONS = {
    "intensity_range": "LO,HI, 'dtype' or 'percentile': how raw intensities map to gray",
    "output_dtype": "uint8, uint16 or float32",
}

#: What may run a backend's network (the ``runtime`` option, `colorplug.runtimes`): torch,
#: or the network exported to ONNX and run on the CPU by ONNX Runtime or OpenVINO. A
#: backend that offers the choice declares ``runtime`` in `BackendInfo.options` (with
#: `RUNTIME_HELP`); hosts show a chooser of these values for it. Every backend takes
#: ``runtime="torch"``.
RUNTIMES = ("torch", "onnx", "openvino")
RUNTIME_HELP = ("what runs the network: torch (default), onnx (ONNX Runtime, CPU; pip install "
                "\"colorplug[onnx]\") or openvino (OpenVINO, CPU; pip install "
                "\"colorplug[openvino]\"); the network is exported once per weights file")


@dataclass(frozen=True)
class BackendInfo:
    """What a host (CLI, napari, GIMP) needs to know about a backend before building it.

    `needs_reference`: the backend cannot run without a colour reference image.
    `accepts_reference`: a reference is used when given (implied by `needs_reference`).
    `supports_hints`: user colour hints (scribbles / points) are used.
    `needs_hints`: the backend cannot run without hints (implies `supports_hints`).
    `working_size`: the size chroma is predicted at (int: square side, or None: any).
    `trainer`: the import path of the backend's training module (``"package.module"``),
    which provides ``add_arguments(parser)`` and ``make_task(args)`` (see `colorplug.train`).
    `options`: the backend's own options, name -> one line of help (shown by
    ``colorplug info``; an option not listed is refused with the list). ``None``: not
    declared, so unknown options are only found when the factory rejects them. The common
    options ``intensity_range`` and ``output_dtype`` are always accepted.
    """

    name: str
    description: str
    needs_reference: bool = False
    accepts_reference: bool = False
    supports_hints: bool = False
    needs_hints: bool = False
    working_size: int | tuple[int, int] | None = None
    color_space: str = "lab"
    trainer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    options: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.needs_reference and not self.accepts_reference:
            object.__setattr__(self, "accepts_reference", True)
        if self.needs_hints and not self.supports_hints:
            object.__setattr__(self, "supports_hints", True)

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The ``runtime`` values this backend takes (hosts offer these): all of `RUNTIMES`
        when it declares the ``runtime`` option, else torch only."""
        return RUNTIMES if "runtime" in (self.options or {}) else ("torch",)


@runtime_checkable
class Colorizer(Protocol):
    """A ready-to-use colorizer: grayscale in, colour (H, W, 3) or (H, W, 4) out."""

    info: BackendInfo

    def colorize(self, image: Any, *, reference: Any = None, hints: Any = None
                 ) -> np.ndarray | list[np.ndarray]:
        """Colorize one image -> an array (a list or tuple of images -> a list)."""
        ...

    def colorize_batch(
        self, images: Sequence[Any], *, reference: Any = None, hints: Any = None
    ) -> list[np.ndarray]:
        """Colorize many images; results equal calling `colorize` on each."""
        ...
