"""Images in and out: what users pass becomes full-resolution lightness; files are read
and written safely. One module per job:

- `coerce`: numpy arrays, PIL images and torch tensors -> a checked (H, W[, C]) array.
- `intensity`: raw intensities -> display gray -> L* (`prepare`, `prepare_reference`).
- `resize`: a backend's working size and map resizing.
- `dtypes`: float sRGB -> the output dtype (uint8, uint16, float32).
- `codecs`: decoding and encoding files (Pillow, OpenCV for 16-bit PNG, tifffile).
- `find`: image files in the folders users give.

Writing files atomically lives in `colorplug.files`.
"""
from __future__ import annotations

from ..files import write_bytes_atomic
from .codecs import IMAGE_SUFFIXES, encode_image, read_image, write_image
from .coerce import pil_to_array, to_array
from .dtypes import OUTPUT_DTYPES, convert_dtype, finish
from .find import find_images
from .intensity import (PERCENTILES, Prepared, intensity_to_unit, prepare,
                        prepare_reference)
from .resize import MAX_WORKING_SIZE, check_working_size, resize_map, working_shape

__all__ = [
    "IMAGE_SUFFIXES", "OUTPUT_DTYPES", "PERCENTILES", "Prepared", "convert_dtype",
    "encode_image", "find_images", "finish", "intensity_to_unit", "pil_to_array", "prepare",
    "prepare_reference", "read_image", "resize_map", "to_array", "working_shape",
    "MAX_WORKING_SIZE", "check_working_size",
    "write_bytes_atomic", "write_image",
]
