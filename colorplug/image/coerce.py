"""Coercion: the image objects users pass (numpy, PIL, torch) -> a checked numpy array.

Accepted: arrays shaped (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA; torch tensors
the same or channels-first (C, H, W). dtypes: uint8, uint16 and floats (other integer types
need an explicit ``intensity_range``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError


def _is_torch(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach")


def _torch_to_numpy(tensor: Any) -> np.ndarray:
    if getattr(tensor, "is_meta", False):
        raise InputError("a meta tensor holds no data (only its shape): materialise it, "
                         "e.g. torch.empty_like(t, device='cpu'), and fill it first")
    if str(getattr(tensor, "layout", "torch.strided")) != "torch.strided":
        tensor = tensor.to_dense()  # sparse images: the same pixels, densely
    tensor = tensor.detach().cpu()
    if str(tensor.dtype) == "torch.bfloat16":
        tensor = tensor.float()  # numpy has no bfloat16
    if tensor.dtype.is_complex:
        raise InputError(f"complex tensors cannot be colorized (dtype {tensor.dtype})")
    return tensor.numpy()


def to_array(image: Any, *, what: str = "image") -> np.ndarray:
    """Any accepted image object -> numpy array shaped (H, W) or (H, W, C)."""
    if image is None:
        raise InputError(f"no {what} given (got None)")
    if _is_torch(image):
        arr = _torch_to_numpy(image)
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # channels-first, as torch code holds images
    elif hasattr(image, "mode") and hasattr(image, "getbands"):  # PIL.Image
        arr = pil_to_array(image)
    elif isinstance(image, np.ndarray):
        arr = image
    else:
        raise InputError(f"unsupported {what} type {type(image).__name__}: pass a numpy "
                         "array, a PIL image or a torch tensor")
    if arr.size == 0 or 0 in arr.shape:
        raise InputError(f"empty {what}: shape {arr.shape} has no pixels")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] == 2:
        raise InputError(f"{what} shape {arr.shape}: 2 channels are ambiguous; pass gray "
                         "(H, W), RGB (H, W, 3) or RGBA (H, W, 4)")
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))):
        raise InputError(f"{what} has ndim {arr.ndim} and shape {arr.shape}; expected "
                         "(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (stacks: colorize each "
                         "slice, or use colorize_batch)")
    return arr


def dtype_max(arr: np.ndarray) -> float:
    """The value that means white for a dtype's full range (floats: 1.0)."""
    if arr.dtype == np.uint8:
        return 255.0
    if arr.dtype == np.uint16:
        return 65535.0
    return 1.0


def check_dtype(arr: np.ndarray, intensity_range: Any, what: str) -> None:
    """Refuse dtypes and values that cannot be mapped to display intensities."""
    if arr.dtype in (np.uint8, np.uint16) or arr.dtype.kind == "f":
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputError(f"{what} contains NaN or infinite values")
        return
    if arr.dtype.kind in "iu" and isinstance(intensity_range, (tuple, list)):
        return
    if what == "reference":
        raise InputError(f"unsupported reference dtype {arr.dtype}: a colour reference must "
                         "be uint8, uint16 or float RGB in [0, 1] (convert it, e.g. to "
                         "uint8 0..255)")
    raise InputError(f"unsupported {what} dtype {arr.dtype}: use uint8, uint16 or float in "
                     "[0, 1], or pass intensity_range=(lo, hi) for other integer data")


def pil_to_array(img: Any) -> np.ndarray:
    """A PIL image -> numpy, keeping 16-bit gray as uint16 and float as float32."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img, dtype=np.uint16)
    if mode == "I":
        arr = np.asarray(img)
        if arr.min() >= 0 and arr.max() <= 65535:
            return arr.astype(np.uint16)
        return arr.astype(np.int64)
    if mode == "F":
        return np.asarray(img, dtype=np.float32)
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(img)
    if mode == "1":
        return np.asarray(img.convert("L"))
    if mode == "La":  # premultiplied alpha: Pillow converts it only to LA
        img, mode = img.convert("LA"), "LA"
    if mode == "RGBa":  # premultiplied alpha
        return np.asarray(img.convert("RGBA"))
    if mode in ("LA", "PA") or (mode == "P" and "transparency" in img.info):
        return np.asarray(img.convert("RGBA"))
    return np.asarray(img.convert("RGB"))
