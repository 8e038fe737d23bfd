"""Reading a weights file exactly as its authors publish it, and loading it strictly.

The files are pickled torch files: they are read only with ``torch.load(weights_only=True)``.
DDColor's files hold ``{'params': state_dict}`` (BasicSR's format; the per-model Hugging
Face repos hold the bare state dict) with spectral-norm convolutions stored as
``weight_orig``/``weight_u``/``weight_v``; our networks use plain convolutions, so the
spectral norm is folded once at load into ``weight = weight_orig / sigma`` with
``sigma = u . (W v)``, which is what ``torch.nn.utils.spectral_norm`` computes in eval mode
(no power iteration). Any key missing from the file or left over is a WeightsError naming
the file and the keys; the one exception is BatchNorm's ``num_batches_tracked``, a training
counter that torch itself fills in for files saved before it existed.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any

import colorplug

MAX_LISTED = 6
_SN_SUFFIXES = ("weight_orig", "weight_u", "weight_v")


def _keys(keys: list[str]) -> str:
    more = f" and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else ""
    return ", ".join(keys[:MAX_LISTED]) + more


def read_state(path: str | os.PathLike, *, layout: str = "auto") -> dict[str, Any]:
    """The state dict inside a published file.

    `layout`: "state_dict" (the file is the state dict), "params" (``{'params': ...}``) or
    "auto" (either; a dict with a ``params`` entry is unwrapped, as the authors' loader does).
    """
    import torch

    name = str(path)
    if not os.path.isfile(path):
        raise colorplug.WeightsError(f"weights file {name!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError,
            AttributeError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise colorplug.WeightsError(f"cannot read weights file {name!r} (read with "
                                     f"torch.load(weights_only=True)): {first}") from None
    if not isinstance(obj, Mapping):
        raise colorplug.WeightsError(f"weights file {name!r} holds a {type(obj).__name__}, "
                                     "not a state dict")
    if layout in ("params", "auto") and "params" in obj and isinstance(obj["params"], Mapping):
        obj = obj["params"]
    elif layout == "params":
        raise colorplug.WeightsError(f"weights file {name!r} has no 'params' entry (the "
                                     "layout DDColor's .pth files have); top-level keys: "
                                     f"{_keys(sorted(map(str, obj)))}")
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise colorplug.WeightsError(f"weights file {name!r} is not a state dict: entries "
                                     f"that are not tensors: {_keys(bad)}")
    return dict(obj)


def fold_spectral_norm(state: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """Replace each ``P.weight_orig/_u/_v`` triple by ``P.weight = weight_orig / sigma``
    with ``sigma = u . (W_mat v)``, W_mat the weight reshaped to (out, -1) (spectral_norm's
    eval-time weight for a Conv2d/Linear, dim 0)."""
    import torch

    out = {k: v for k, v in state.items()
           if not any(k == s or k.endswith("." + s) for s in _SN_SUFFIXES)}
    prefixes = sorted({k[:-len(s)] for k in state for s in _SN_SUFFIXES
                       if k.endswith(s) and (k == s or k.endswith("." + s))})
    missing = []
    for p in prefixes:  # "module.name." (or "" for a bare module)
        parts = [p + s for s in _SN_SUFFIXES]
        absent = [k for k in parts if k not in state]
        if absent:
            missing += absent
            continue
        w, u, v = (state[k].to(torch.float64) for k in parts)
        mat = w.reshape(w.shape[0], -1)
        if u.shape != (mat.shape[0],) or v.shape != (mat.shape[1],):
            raise colorplug.WeightsError(
                f"weights {source}: spectral-norm vectors of {p[:-1]!r} do not fit its weight "
                f"(weight {tuple(w.shape)}, u {tuple(u.shape)}, v {tuple(v.shape)})")
        sigma = torch.dot(u, torch.mv(mat, v))
        out[p + "weight"] = (w / sigma).to(state[parts[0]].dtype)
    if missing:
        raise colorplug.WeightsError(f"weights {source} do not fit this model: missing "
                                     f"{_keys(missing)} (incomplete spectral-norm entries)")
    return out


def load_strict(net: Any, state: Mapping[str, Any], *, source: str) -> Any:
    """Load `state` into `net`: names and shapes must match exactly, else a WeightsError."""
    import torch

    own = net.state_dict()
    state = dict(state)
    for k in own:
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros_like(own[k])
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {_keys(missing)}")
        if unexpected:
            parts.append(f"unexpected (left over) {_keys(unexpected)}")
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:3]))
        raise colorplug.WeightsError(f"weights {source} do not fit this model: "
                                     + "; ".join(parts))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise colorplug.WeightsError(f"weights {source} hold non-finite values in {_keys(bad)}")
    net.load_state_dict(state, strict=True)
    return net.eval()


def load_file(net: Any, path: str | os.PathLike, *, layout: str = "auto",
              spectral_norm: bool = False) -> Any:
    """Read `path` as published, fold spectral norm when asked, and load it strictly."""
    state = read_state(path, layout=layout)
    source = repr(str(path))
    if spectral_norm:
        state = fold_spectral_norm(state, source=source)
    return load_strict(net, state, source=source)
