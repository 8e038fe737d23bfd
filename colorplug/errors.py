"""Exceptions colorplug raises: each names the problem in words a user can act on.

Every error also carries ``kind``, a short machine-readable name of what went wrong
(``missing_reference``, ``grayscale_reference``, ``no_hints``, ``no_cuda``, ...), so each
host (napari, GIMP, the CLI) can word the remedy in its own terms instead of repeating the
API's advice.
"""
from __future__ import annotations


class ColorplugError(Exception):
    """Base class for every error colorplug raises on purpose."""

    kind = "error"


class InputError(ColorplugError, ValueError):
    """The image (or reference, or hints) given cannot be colorized as it is."""

    kind = "bad_input"


class MissingReferenceError(InputError):
    """A backend that needs a colour reference image was called without one."""

    kind = "missing_reference"


class GrayscaleReferenceError(InputError):
    """The reference image has no colour to take colours from."""

    kind = "grayscale_reference"


class MissingHintsError(InputError):
    """A backend that needs colour hints was called without any (or with none usable)."""

    kind = "no_hints"


class BadRequestError(InputError):
    """A host's request to colorplug (the GIMP bridge) is malformed."""

    kind = "bad_request"


class UnknownBackendError(ColorplugError, KeyError):
    """No backend of that name is registered."""

    kind = "unknown_backend"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BackendConflictError(ColorplugError):
    """Two plugins registered the same backend name."""

    kind = "backend_conflict"


class PluginError(ColorplugError):
    """A third-party plugin failed to import or to register (strict mode only)."""

    kind = "plugin"


class WeightsError(ColorplugError):
    """Weights are missing, corrupt, do not match their checksum or their model."""

    kind = "weights"


class DeviceError(ColorplugError):
    """The requested compute device is not available."""

    kind = "device"


class NoCudaError(DeviceError):
    """CUDA was asked for on a machine (or a torch build) without it."""

    kind = "no_cuda"


class IgnoredInputWarning(UserWarning):
    """A reference or hints were given to a backend that does not use them."""


class ColourInputWarning(UserWarning):
    """The input already holds colour: only its lightness is kept, its colours are
    replaced by the backend's."""


class OutputError(ColorplugError, OSError):
    """An output cannot be written where the user asked (permissions, disk, a clash)."""

    kind = "output"


class BackendError(ColorplugError):
    """A backend failed or returned something that is not a valid image; names the backend
    and the plugin distribution it came from."""

    kind = "backend"


class UnknownOptionError(ColorplugError, TypeError):
    """A backend was given an option it does not have; the message lists the valid ones."""

    kind = "unknown_option"


class ResourceError(ColorplugError, MemoryError):
    """The machine cannot fit the work asked for (memory); names the image size."""

    kind = "resource"


class TrainingError(ColorplugError, FloatingPointError):
    """Training cannot go on (the loss became NaN or infinite); the message says at which
    step, with which learning rate, and what to try."""

    kind = "training"
