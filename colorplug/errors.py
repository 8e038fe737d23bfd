"""Exceptions colorplug raises: each names the problem in words a user can act on."""
from __future__ import annotations


class ColorplugError(Exception):
    """Base class for every error colorplug raises on purpose."""


class InputError(ColorplugError, ValueError):
    """The image (or reference, or hints) given cannot be colorized as it is."""


class MissingReferenceError(InputError):
    """A backend that needs a colour reference image was called without one."""


class MissingHintsError(InputError):
    """A backend that needs colour hints was called without them."""


class UnknownBackendError(ColorplugError, KeyError):
    """No backend of that name is registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BackendConflictError(ColorplugError):
    """Two plugins registered the same backend name."""


class PluginError(ColorplugError):
    """A third-party plugin failed to import or to register (strict mode only)."""


class WeightsError(ColorplugError):
    """Weights are missing, corrupt, do not match their checksum or their model."""


class DeviceError(ColorplugError):
    """The requested compute device is not available."""


class IgnoredInputWarning(UserWarning):
    """A reference or hints were given to a backend that does not use them."""


class OutputError(ColorplugError, OSError):
    """An output cannot be written where the user asked (permissions, disk, a clash)."""


class BackendError(ColorplugError):
    """A backend failed or returned something that is not a valid image; names the backend
    and the plugin distribution it came from."""


class UnknownOptionError(ColorplugError, TypeError):
    """A backend was given an option it does not have; the message lists the valid ones."""


class ResourceError(ColorplugError, MemoryError):
    """The machine cannot fit the work asked for (memory); names the image size."""
