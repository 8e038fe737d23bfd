"""Keep torch's triton import from crashing a process that already shows OpenGL.

Why: an OpenGL canvas (napari's viewer, any Qt/VisPy window, Jupyter with ``%gui qt``)
makes Mesa load its own libLLVM with global symbols. ``torch._dynamo`` (imported by
``torch.optim``, torchvision and so by the cgan / exemplar backends and many plugins)
imports triton, whose extension module carries another LLVM; loaded after Mesa's, its
symbols bind to Mesa's copy and the process dies with a segfault (exit 139).

Mechanism chosen: every colorplug entry point that may import torch (``colorplug.get``,
which the API, the CLI, dask workers, the video API and the hosts all go through, each
checked colorize call, and training) calls `guard_triton` first. When Mesa's libLLVM is
mapped into the process (read from ``/proc/self/maps``) and triton is installed but not yet
imported, triton's extension is imported once with ``RTLD_DEEPBIND``, so it resolves its
own symbols first whatever GL has loaded; later imports of triton reuse it. Over the
alternatives: pre-importing ``torch._dynamo`` at ``import colorplug`` would slow every light
import by seconds; hiding triton from torch would break ``torch.compile`` for CUDA users;
a guard in the napari widget only (the earlier design) left scripts and notebooks crashing.
The check costs one read of the memory map while no GL is loaded, and nothing once triton
is imported. Outside glibc (no ``RTLD_DEEPBIND``) there is no Mesa clash to guard against.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading

_lock = threading.Lock()


def mesa_llvm_loaded() -> bool:
    """Whether a libLLVM (Mesa's, loaded by an OpenGL context) is mapped into this process."""
    try:
        with open("/proc/self/maps", "rb") as fh:
            return b"libLLVM" in fh.read()
    except OSError:
        return False


def preload_triton() -> bool:
    """Import triton with RTLD_DEEPBIND if installed and not yet loaded; True if loaded now.

    dlopen flags are interpreter-wide: they are set only for this import, under a lock.
    """
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)  # glibc only; other systems have no Mesa clash
    with _lock:
        if not deepbind or "triton" in sys.modules:
            return False
        try:
            if importlib.util.find_spec("triton") is None:
                return False
        except (ImportError, ValueError):
            return False
        old = sys.getdlopenflags()
        sys.setdlopenflags(old | deepbind)
        try:
            import triton  # noqa: F401
        except Exception:  # noqa: BLE001 - a broken triton is torch's business, not ours
            return False
        finally:
            sys.setdlopenflags(old)
        return True


def guard_triton() -> bool:
    """Preload triton safely if an OpenGL context's LLVM is already in this process (see the
    module docstring); True if it was loaded now. Cheap to call before any torch work."""
    if "triton" in sys.modules or not getattr(os, "RTLD_DEEPBIND", 0):
        return False
    if not mesa_llvm_loaded():
        return False
    return preload_triton()
