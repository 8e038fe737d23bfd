"""Choosing the torch device from the user's words, with clear errors."""
from __future__ import annotations

from typing import Any

from .errors import DeviceError


def resolve_device(device: Any = "auto") -> Any:
    """"auto" -> cuda if available else cpu; "cuda" without CUDA is a DeviceError."""
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str):
        raise DeviceError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or "
                          "'cuda:N'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            from .errors import NoCudaError

            raise NoCudaError(f"device {device!r} was asked for but CUDA is not available "
                              "on this machine (torch.cuda.is_available() is False); use "
                              "device='cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r}: only {torch.cuda.device_count()} CUDA "
                              "device(s) present")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("device 'mps' was asked for but is not available here")
    elif dev.type != "cpu":
        raise DeviceError(f"unsupported device {device!r}; use 'auto', 'cpu' or 'cuda'")
    return dev
