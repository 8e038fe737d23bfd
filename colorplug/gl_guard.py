"""Load triton safely in a process whose OpenGL (Mesa) has already loaded libLLVM.

Why: napari's canvas makes Mesa load its own libLLVM with global symbols. torch._dynamo
(imported by torch.optim, torchvision and the cgan/exemplar backends) imports triton, whose
extension module carries another LLVM; loaded after Mesa's, its symbols bind to Mesa's
copy and the process dies with a segfault (exit 139). Loading triton's extension with
RTLD_DEEPBIND makes it resolve its own symbols first, so it works whatever GL has loaded.

Mechanism chosen (over pre-importing torch._dynamo or hiding triton from torch): the
widget calls :func:`preload_triton` on the main thread when it is created. It holds for a
user who opens the widget after the viewer exists (no other code of ours runs earlier),
for every later import of torch._dynamo in the same process (a pytest run's training
tests: triton is then already in ``sys.modules``), costs ~0.15 s once, and leaves triton
fully usable for CUDA users, which hiding it would not.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading

_lock = threading.Lock()


def preload_triton() -> bool:
    """Import triton with RTLD_DEEPBIND if installed and not yet loaded; True if loaded now.

    Must run on the main thread: dlopen flags are interpreter-wide.
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
