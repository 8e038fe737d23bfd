"""Reading and writing image files.

8-bit images are read through Pillow; 16-bit PNG (gray, RGB, RGBA) through OpenCV, because
Pillow reads 16-bit colour PNG as 8-bit and cannot write it. PNG is written by OpenCV
(faster, with zlib's run-length strategy), other formats by Pillow; TIFF through tifffile
(any dtype, float32 included). JPEG EXIF orientation is applied to the pixels on read, so
outputs are upright and carry no orientation tag.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from ..files import regular_file_problem, write_bytes_atomic
from .coerce import pil_to_array

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
_PIL_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP"}
#: Bit depths each written format holds; others are converted (float32: TIFF only).
EIGHT_BIT_ONLY = {".jpg", ".jpeg", ".webp", ".bmp"}
#: PNG compression, through OpenCV (libpng): zlib level 1 with the run-length strategy
#: encodes a 256² photo about 1.8x faster than Pillow at level 3 (10 vs 18 ms on the 2-core
#: development machine) and the files come out smaller (96 vs 103 kB, near level 6's).
PNG_COMPRESSION = 1

_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG", b"GIF8": "GIF", b"RIFF": "WebP",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"BM": "BMP"}


_PIL_OPEN_LOCK = threading.Lock()


class ImageTooLargeError(InputError):
    """An image has more pixels than the decompression-bomb limit allows."""


def pixel_limit() -> int:
    """The most pixels an image may have before it is refused as a possible decompression
    bomb: Pillow's own error threshold (2 x ``Image.MAX_IMAGE_PIXELS``, ~179 MP), applied to
    every decoder; 0 when Pillow's limit is switched off."""
    from PIL import Image

    return 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else 0


def check_pixel_count(path: str | os.PathLike, pixels: int, *, allow_huge: bool) -> None:
    """Refuse `pixels` (read from a file's header, before decoding) over `pixel_limit`."""
    limit = pixel_limit()
    if not allow_huge and limit and pixels > limit:
        raise ImageTooLargeError(
            f"cannot read {str(path)!r}: its header announces {pixels:,} pixels, over the "
            f"limit of {limit:,}. It may be a decompression bomb; if you trust the file, "
            "allow it with --allow-huge-images (API: allow_huge=True)")


class _Collect(logging.Handler):
    """tifffile's warnings logged by the thread that made this handler (files are decoded
    in several threads at once: another file's messages are not this one's)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


_TIFF_LOG_LOCK = threading.Lock()
_tiff_log_readers = 0
_tiff_log_propagate = True


@contextlib.contextmanager
def tiff_problems() -> Iterator[list[str]]:
    """Collect what tifffile logs while this thread reads (it logs, rather than raises,
    for a file cut short: pages past the end are dropped and the rest reads as a smaller
    image). Callers treat any message as a corrupt file, never as a smaller valid one.
    tifffile's logger stops propagating while any thread reads, and is restored after
    the last one."""
    global _tiff_log_readers, _tiff_log_propagate
    handler = _Collect()
    logger = logging.getLogger("tifffile")
    with _TIFF_LOG_LOCK:
        if _tiff_log_readers == 0:
            _tiff_log_propagate = logger.propagate
            logger.propagate = False
        _tiff_log_readers += 1
        logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        with _TIFF_LOG_LOCK:
            logger.removeHandler(handler)
            _tiff_log_readers -= 1
            if _tiff_log_readers == 0:
                logger.propagate = _tiff_log_propagate


def tiff_pixel_count(source: Any) -> int:
    """Pixels (samples of a pixel counted once) of a TIFF's first series, from its header."""
    import tifffile

    with tifffile.TiffFile(source) as tif:
        series = tif.series[0]
        count = int(np.prod(series.shape, dtype=np.int64))
        if "S" in series.axes:
            count //= max(1, series.shape[series.axes.index("S")])
        return count


def _signature(head: bytes) -> str | None:
    """The image format a file's first bytes announce, if any."""
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def _check_regular(path: Path) -> None:
    problem = regular_file_problem(path)
    if problem is not None:
        raise InputError(f"cannot read {str(path)!r}: {problem}")


def _decode_png16(data: bytes, path: Path) -> np.ndarray:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"cannot read {str(path)!r}: truncated or corrupt PNG file")
    if arr.ndim == 3:
        arr = arr[..., [2, 1, 0, 3][: arr.shape[-1]]]  # OpenCV holds BGR(A)
    return np.ascontiguousarray(arr)


def read_image(path: str | os.PathLike, *, allow_huge: bool = False) -> np.ndarray:
    """Read an image file into numpy; unreadable files raise InputError naming the file.

    Images whose header announces more than `pixel_limit` pixels (Pillow's decompression-
    bomb limit, about 179 megapixels) are refused before decoding, whatever the format,
    unless `allow_huge` is true (CLI: ``--allow-huge-images``).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    _check_regular(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    kind = _signature(data[:8])
    if kind == "TIFF" or path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        with tiff_problems() as problems:
            try:
                pixels = tiff_pixel_count(io.BytesIO(data))
            except Exception as exc:  # noqa: BLE001 - any tiff header failure
                raise InputError(f"cannot read {str(path)!r}: corrupt or unsupported TIFF "
                                 f"({exc})") from None
            check_pixel_count(path, pixels, allow_huge=allow_huge)  # a bomb before all else
            if not problems:
                try:
                    arr = np.asarray(tifffile.imread(io.BytesIO(data)))
                except Exception as exc:  # noqa: BLE001 - any tiff decoding failure
                    raise InputError(f"cannot read {str(path)!r}: corrupt or unsupported TIFF "
                                     f"({exc})") from None
        if problems:
            raise InputError(f"cannot read {str(path)!r}: truncated or corrupt TIFF "
                             f"({problems[0]})")
        return arr
    if kind == "PNG" and len(data) > 25 and data[24] == 16:  # IHDR bit depth
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        check_pixel_count(path, width * height, allow_huge=allow_huge)
        return _decode_png16(data, path)
    try:
        with _PIL_OPEN_LOCK:  # MAX_IMAGE_PIXELS is global: decoding threads share it
            limit = Image.MAX_IMAGE_PIXELS
            if allow_huge:
                Image.MAX_IMAGE_PIXELS = None
            try:
                img = Image.open(io.BytesIO(data))  # reads the header only
            finally:
                Image.MAX_IMAGE_PIXELS = limit
        with img:
            check_pixel_count(path, img.size[0] * img.size[1], allow_huge=allow_huge)
            img.load()
            return pil_to_array(ImageOps.exif_transpose(img))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"cannot read {str(path)!r}: {exc} It may be a decompression bomb; if you trust "
            "the file, allow it with --allow-huge-images (API: read_image(..., "
            "allow_huge=True))") from None
    except UnidentifiedImageError:
        if kind:
            raise InputError(f"cannot read {str(path)!r}: truncated or corrupt {kind} file"
                             ) from None
        raise InputError(f"cannot read {str(path)!r}: not an image file (or a format "
                         "Pillow does not know)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read {str(path)!r}: truncated or corrupt image ({exc})"
                         ) from None


def _encode_png(arr: np.ndarray) -> bytes:
    """uint8 or uint16 gray, RGB or RGBA -> PNG bytes (OpenCV; see PNG_COMPRESSION)."""
    import cv2

    if arr.ndim == 3:
        arr = arr[..., [2, 1, 0, 3][: arr.shape[-1]]]  # OpenCV writes BGR(A)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr),
                           [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION,
                            cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE])
    if not ok:
        raise InputError(f"OpenCV could not encode the PNG ({arr.dtype}, shape {arr.shape})")
    return buf.tobytes()


def encode_image(arr: np.ndarray, suffix: str) -> bytes:
    """Encode an output array for a file suffix.

    TIFF keeps uint8, uint16 and float32; PNG keeps uint8 and uint16 (float32 becomes
    16-bit); JPEG, WebP and BMP hold 8 bits. Alpha is dropped for JPEG.
    """
    suffix = suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        buf = io.BytesIO()
        extra = {"extrasamples": ["unassalpha"]} if arr.ndim == 3 and arr.shape[-1] == 4 else {}
        tifffile.imwrite(buf, arr, photometric="rgb" if arr.ndim == 3 else "minisblack",
                         **extra)
        return buf.getvalue()
    if suffix not in _PIL_FORMATS:
        raise InputError(f"cannot write {suffix!r} files; use .png, .jpg, .webp, .tif or .bmp")
    if arr.dtype.kind == "f":
        unit = np.clip(arr, 0, 1)
        arr = (np.rint(unit * 65535).astype(np.uint16) if suffix == ".png"
               else np.rint(unit * 255).astype(np.uint8))
    if suffix == ".png" and arr.dtype in (np.uint8, np.uint16):
        return _encode_png(arr)
    if arr.dtype == np.uint16:
        arr = np.rint(arr / 257.0).astype(np.uint8)
    if suffix in (".jpg", ".jpeg") and arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    from PIL import Image

    buf = io.BytesIO()
    fmt = _PIL_FORMATS[suffix]
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write_image(path: str | os.PathLike, arr: np.ndarray, *, overwrite: bool = False) -> None:
    """Encode and write an image atomically (see `colorplug.files.write_bytes_atomic`)."""
    write_bytes_atomic(path, encode_image(arr, Path(path).suffix), overwrite=overwrite)
