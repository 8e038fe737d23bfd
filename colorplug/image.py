"""Image input and output: turning what users pass into lightness, reading and writing files.

Accepted inputs: PIL images, numpy arrays shaped (H, W), (H, W, 1), (H, W, 3) RGB or
(H, W, 4) RGBA, and torch tensors (the same shapes, or channels-first (C, H, W)).
dtypes: uint8, uint16, float16/32/64 (other integer types need ``intensity_range``).

Intensity -> lightness (single-channel data):
- ``intensity_range=(lo, hi)``: lo maps to black, hi to white, linearly, clipped.
- ``"dtype"``: the full range of the dtype (uint8 0..255, uint16 0..65535, float 0..1).
- ``"percentile"``: the 0.5th and 99.5th percentiles (robust to hot pixels).
- ``None`` (default): uint8 -> "dtype"; float data inside [0, 1] -> "dtype"; uint16 and
  float data outside [0, 1] -> "percentile", as scientific data rarely fills its range.
The mapped value is a displayed gray level (sRGB encoded), so what the user sees as gray is
what gets colorized and the output has that gray's lightness.
Colour inputs: lightness is the L* of the colour (their chroma is discarded).
"""
from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import color
from .errors import InputError

PERCENTILES = (0.5, 99.5)
OUTPUT_DTYPES = ("uint8", "uint16", "float32")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


@dataclass
class Prepared:
    """An input reduced to what every backend needs: full-resolution L* and alpha."""

    lightness: np.ndarray  # float32 (H, W) in [0, 100]
    alpha: np.ndarray | None  # float32 (H, W) in [0, 1], or None
    is_color: bool


# ------------------------------------------------------------------------ conversion
def _is_torch(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "detach")


def to_array(image: Any, *, what: str = "image") -> np.ndarray:
    """Any accepted image object -> numpy array shaped (H, W) or (H, W, C)."""
    if image is None:
        raise InputError(f"no {what} given (got None)")
    if _is_torch(image):
        arr = image.detach().cpu().numpy()
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


def _check_dtype(arr: np.ndarray, intensity_range: Any, what: str) -> None:
    if arr.dtype in (np.uint8, np.uint16) or arr.dtype.kind == "f":
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputError(f"{what} contains NaN or infinite values")
        return
    if arr.dtype.kind in "iu" and isinstance(intensity_range, (tuple, list)):
        return
    raise InputError(f"unsupported {what} dtype {arr.dtype}: use uint8, uint16 or float in "
                     "[0, 1], or pass intensity_range=(lo, hi) for other integer data")


def _dtype_max(arr: np.ndarray) -> float:
    if arr.dtype == np.uint8:
        return 255.0
    if arr.dtype == np.uint16:
        return 65535.0
    return 1.0


def intensity_to_unit(arr: np.ndarray, intensity_range: Any = None) -> np.ndarray:
    """Map raw intensities to [0, 1] display values (float32) following the module rules."""
    mode = intensity_range
    if mode is None:
        if arr.dtype == np.uint8 or arr.ndim == 3:
            mode = "dtype"
        elif arr.dtype.kind == "f" and float(arr.min()) >= 0.0 and float(arr.max()) <= 1.0:
            mode = "dtype"
        else:
            mode = "percentile"
    if mode == "dtype":
        lo, hi = 0.0, _dtype_max(arr)
    elif mode == "percentile":
        lo, hi = (float(v) for v in np.percentile(arr, PERCENTILES))
        if hi <= lo:  # constant image: fall back to the dtype range
            lo, hi = 0.0, max(_dtype_max(arr), hi)
    elif isinstance(mode, (tuple, list)) and len(mode) == 2:
        lo, hi = float(mode[0]), float(mode[1])
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
            raise InputError(f"intensity_range {tuple(mode)} must be finite with lo < hi")
    else:
        raise InputError(f"intensity_range must be None, 'dtype', 'percentile' or (lo, hi); "
                         f"got {mode!r}")
    if arr.dtype == np.uint8 and (lo, hi) == (0.0, 255.0):
        return (arr.astype(np.float32) / 255.0)
    out = (arr.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


_GRAY8_L = color.lightness_from_gray(np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def prepare(image: Any, *, intensity_range: Any = None, what: str = "image") -> Prepared:
    """Validate an input and reduce it to full-resolution lightness (+ alpha)."""
    arr = to_array(image, what=what)
    _check_dtype(arr, intensity_range, what)
    alpha = None
    if arr.ndim == 3 and arr.shape[-1] == 4:
        alpha = np.clip(arr[..., 3].astype(np.float32) / np.float32(_dtype_max(arr)), 0, 1)
        arr = arr[..., :3]
    if arr.ndim == 2:
        if arr.dtype == np.uint8 and intensity_range in (None, "dtype"):
            lightness = _GRAY8_L[arr]  # exact and fast: a 256-entry table
        else:
            lightness = color.lightness_from_gray(intensity_to_unit(arr, intensity_range))
        return Prepared(lightness.astype(np.float32, copy=False), alpha, False)
    unit = intensity_to_unit(arr, "dtype" if intensity_range is None else intensity_range)
    is_color = bool(np.ptp(unit.reshape(-1, 3)[:: max(1, unit.size // 300000)], axis=1).max()
                    > 1e-6) if unit.size else False
    return Prepared(color.lightness_from_rgb(unit).astype(np.float32), alpha, is_color)


def prepare_reference(reference: Any, *, require_color: bool = True) -> np.ndarray:
    """A colour reference image -> Lab float32 (H, W, 3); a gray reference is an error."""
    arr = to_array(reference, what="reference")
    _check_dtype(arr, None, "reference")
    if arr.ndim == 2:
        if require_color:
            from .errors import GrayscaleReferenceError

            raise GrayscaleReferenceError("the reference image is grayscale; a colour (RGB) reference is "
                             "needed to take colours from")
        arr = np.repeat(arr[..., None], 3, axis=-1)
    rgb = intensity_to_unit(arr[..., :3], "dtype")
    lab = color.rgb_to_lab(rgb)
    if require_color and float(np.abs(lab[..., 1:]).max()) < 1.0:
        from .errors import GrayscaleReferenceError

        raise GrayscaleReferenceError("the reference image has no colour (all pixels are gray); a colour "
                         "reference is needed to take colours from")
    return lab


def working_shape(height: int, width: int, size: int, *, multiple: int = 1) -> tuple[int, int]:
    """(h, w) of an image brought to a backend's working size: longest side about `size`,
    aspect kept, each side rounded to a multiple of `multiple` (at least one multiple)."""
    scale = size / max(height, width)
    return (max(multiple, int(round(height * scale / multiple)) * multiple),
            max(multiple, int(round(width * scale / multiple)) * multiple))


def resize_map(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an (H, W) float map (lightness) to a backend's working size: area average
    when shrinking, bilinear when enlarging (a 1x1 input becomes a flat map)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")
    h, w = values.shape
    resample = Image.BOX if (w >= width and h >= height) else Image.BILINEAR
    return np.asarray(img.resize((width, height), resample=resample), dtype=np.float32)


def finish(rgb: np.ndarray, alpha: np.ndarray | None, output_dtype: str) -> np.ndarray:
    """Float sRGB in [0, 1] (+ alpha) -> the requested output dtype, alpha appended."""
    if alpha is not None:
        rgb = np.concatenate([rgb, alpha[..., None].astype(rgb.dtype)], axis=-1)
    return convert_dtype(rgb, output_dtype)


def convert_dtype(unit: np.ndarray, output_dtype: str) -> np.ndarray:
    if output_dtype == "uint8":
        return np.rint(unit * 255.0).astype(np.uint8)
    if output_dtype == "uint16":
        return np.rint(unit * 65535.0).astype(np.uint16)
    if output_dtype == "float32":
        return unit.astype(np.float32, copy=False)
    raise InputError(f"output_dtype must be one of {', '.join(OUTPUT_DTYPES)}; "
                     f"got {output_dtype!r}")


# ------------------------------------------------------------------------------ files
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
    if mode in ("LA", "PA") or (mode == "P" and "transparency" in img.info):
        return np.asarray(img.convert("RGBA"))
    return np.asarray(img.convert("RGB"))


_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG", b"GIF8": "GIF", b"RIFF": "WebP",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"BM": "BMP"}


def _signature(path: Path) -> str | None:
    """The image format a file's first bytes announce, if any."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into numpy; unreadable files raise InputError naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise InputError(f"cannot read {str(path)!r}: no such file")
    if path.is_dir():
        raise InputError(f"cannot read {str(path)!r}: it is a folder, not an image")
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            return np.asarray(tifffile.imread(path))
        except ImportError:
            pass
        except Exception as exc:  # noqa: BLE001 - any tiff decoding failure
            raise InputError(f"cannot read {str(path)!r}: corrupt or unsupported TIFF "
                             f"({exc})") from None
    try:
        with Image.open(path) as img:
            img.load()
            return pil_to_array(img)
    except UnidentifiedImageError:
        kind = _signature(path)
        if kind:
            raise InputError(f"cannot read {str(path)!r}: truncated or corrupt {kind} file"
                             ) from None
        raise InputError(f"cannot read {str(path)!r}: not an image file (or a format "
                         "Pillow does not know)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"cannot read {str(path)!r}: truncated or corrupt image ({exc})"
                         ) from None


def _png16(arr: np.ndarray) -> bytes:
    """Encode uint16 RGB/RGBA as PNG (Pillow cannot write 16-bit colour PNG)."""
    h, w, c = arr.shape
    color_type = {3: 2, 4: 6}[c]
    raw = np.ascontiguousarray(arr.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    data = np.concatenate([np.zeros((h, 1), np.uint8), raw], axis=1).tobytes()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(data, 6)) + chunk(b"IEND", b""))


def encode_image(arr: np.ndarray, suffix: str) -> bytes:
    """Encode an output array for a file suffix; alpha is dropped for JPEG."""
    import io

    from PIL import Image

    suffix = suffix.lower()
    if arr.dtype == np.float32:
        arr = np.rint(np.clip(arr, 0, 1) * 255).astype(np.uint8)
    if suffix in (".tif", ".tiff"):
        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, arr, photometric="rgb" if arr.ndim == 3 else "minisblack")
        return buf.getvalue()
    if arr.dtype == np.uint16:
        if suffix != ".png":
            arr = (arr >> 8).astype(np.uint8)
        elif arr.ndim == 3:
            return _png16(arr)
        else:
            arr = arr.astype(np.int32)
    if suffix in (".jpg", ".jpeg") and arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    buf = io.BytesIO()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}
    if suffix not in fmt:
        raise InputError(f"cannot write {suffix!r} files; use .png, .jpg, .webp, .tif or .bmp")
    img = Image.fromarray(arr)
    img.save(buf, format=fmt[suffix], **({"quality": 95} if fmt[suffix] == "JPEG" else {}))
    return buf.getvalue()


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> None:
    """Write a file through a temporary file in the same folder, then rename it in place.

    Without `overwrite` an existing file is never replaced (FileExistsError), also if it
    appears while writing.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get normal permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the destination exists: no silent overwrite
            except FileExistsError:
                raise FileExistsError(f"{str(path)!r} exists; pass overwrite to replace it"
                                      ) from None
            except OSError:  # file systems without hard links
                if path.exists():
                    raise FileExistsError(f"{str(path)!r} exists") from None
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_image(path: str | os.PathLike, arr: np.ndarray, *, overwrite: bool = False) -> None:
    """Encode and write an image atomically (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, encode_image(arr, Path(path).suffix), overwrite=overwrite)


def find_images(paths: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Files given, plus image files found recursively in folders given, sorted."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*")
                                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(p)
    return found
