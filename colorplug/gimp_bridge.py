"""The bridge GIMP's plug-in talks to: ``python -m colorplug.gimp_bridge``.

GIMP's own Python has no torch, so the plug-in runs this module in the user's Python. One
JSON request arrives on stdin; pixels travel through raw files (interleaved channels,
8-bit, or 16-bit little-endian for high bit depth images). Lines on stdout:

    progress 0.40            a fraction of the work done
    result {"width": ...}    success (the output file is written)
    error MESSAGE            failure; the exit status is 1

Requests:
    {"command": "list"}
    {"command": "colorize", "backend": "", "device": "auto",
     "input":  {"path": P, "width": W, "height": H, "channels": 1-4, "depth": 8|16},
     "reference": {...} or null, "hints": {...} or null,
     "output": {"path": P}}
Output pixels are RGB, or RGBA when the input has alpha, at the input's depth.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np


def _say(kind: str, payload: str) -> None:
    sys.stdout.write(f"{kind} {payload}\n")
    sys.stdout.flush()


def read_raw(spec: dict[str, Any]) -> np.ndarray:
    """Raw interleaved pixels -> (H, W, C) array; gray + alpha becomes RGBA."""
    from .errors import InputError

    dtype = np.dtype("<u2") if int(spec.get("depth", 8)) == 16 else np.dtype(np.uint8)
    h, w, c = int(spec["height"]), int(spec["width"]), int(spec["channels"])
    data = np.fromfile(spec["path"], dtype=dtype)
    if data.size != h * w * c:
        raise InputError(f"pixel file {spec['path']} holds {data.size} values, expected "
                         f"{w}x{h}x{c}")
    arr = data.reshape(h, w, c).astype(dtype.newbyteorder("="))
    if c == 1:
        return arr[..., 0]
    if c == 2:  # gray + alpha
        return np.concatenate([np.repeat(arr[..., :1], 3, -1), arr[..., 1:]], -1)
    return arr


def backends() -> list[dict[str, Any]]:
    import colorplug

    return [{"name": i.name, "description": i.description,
             "needs_reference": i.needs_reference, "accepts_reference": i.accepts_reference,
             "supports_hints": i.supports_hints, "default": i.name == colorplug.default_backend()}
            for i in colorplug.available()]


def colorize(req: dict[str, Any]) -> dict[str, Any]:
    import colorplug

    from .errors import InputError

    src = req["input"]
    depth = int(src.get("depth", 8))
    image = read_raw(src)
    _say("progress", "0.10")
    reference = read_raw(req["reference"]) if req.get("reference") else None
    hints = read_raw(req["hints"]) if req.get("hints") else None
    if hints is not None and hints.ndim == 2:
        raise InputError("the hints layer is grayscale; draw colour strokes on an RGB layer")
    colorizer = colorplug.get(req.get("backend") or None, device=req.get("device") or "auto",
                              intensity_range="dtype",
                              output_dtype="uint16" if depth == 16 else "uint8")
    _say("progress", "0.30")
    out = colorizer.colorize(image, reference=reference, hints=hints)
    _say("progress", "0.90")
    if depth == 16:
        out.astype("<u2").tofile(req["output"]["path"])
    else:
        out.tofile(req["output"]["path"])
    return {"width": int(out.shape[1]), "height": int(out.shape[0]),
            "channels": int(out.shape[2]), "depth": depth, "backend": colorizer.info.name}


def main() -> int:
    try:
        req = json.loads(sys.stdin.read() or "{}")
        command = req.get("command")
        if command == "list":
            _say("result", json.dumps({"backends": backends()}))
        elif command == "colorize":
            _say("result", json.dumps(colorize(req)))
        else:
            raise ValueError(f"unknown bridge command {command!r}")
    except Exception as exc:  # noqa: BLE001 - every failure becomes one message for GIMP
        from .errors import ColorplugError

        msg = str(exc) if isinstance(exc, ColorplugError) else f"{type(exc).__name__}: {exc}"
        _say("error", " ".join(msg.split()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
