"""Reading frames for evaluation: one function, so colorplug.video.io can replace it.

Accepts a .npy stack (T, H, W[, 3]), a folder of images (sorted by name), or a video
file decoded by PyAV (RGB frames)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InputError


def read_frames(path: str | Path, *, what: str = "--video") -> Iterator[np.ndarray]:
    """Frames of `path` one by one (uint8/uint16 gray or RGB arrays)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what}: no such file or folder: {path}")
    if path.is_dir():
        from ..image import find_images, read_image

        files = sorted(find_images(path))
        if not files:
            raise InputError(f"{what}: no images in the folder {path}")
        return (read_image(f) for f in files)
    if path.suffix.lower() == ".npy":
        try:
            stack = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise InputError(f"{what}: {path} is not a readable .npy stack ({exc})") from None
        if stack.ndim not in (3, 4) or (stack.ndim == 4 and stack.shape[-1] not in (3, 4)):
            raise InputError(f"{what}: {path} holds an array of shape {stack.shape}; expected "
                             "(frames, height, width) or (frames, height, width, 3)")
        return (np.asarray(f) for f in stack)
    return _decode(path, what)


def _decode(path: Path, what: str) -> Iterator[np.ndarray]:
    try:
        import av
    except ImportError:
        raise InputError(f"{what}: reading video files needs PyAV: pip install "
                         "'colorplug[video]'") from None
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{what}: {path} is not a readable video ({exc})") from None

    if container.streams.video:
        from .io import check_frame_size

        try:
            check_frame_size(path, container.streams.video[0], allow_huge=False)
        except InputError as exc:
            container.close()
            raise InputError(f"{what}: {exc}") from None

    def frames() -> Iterator[np.ndarray]:
        with container:
            try:
                for frame in container.decode(video=0):
                    yield frame.to_ndarray(format="rgb24")
            except av.error.FFmpegError as exc:
                raise InputError(f"{what}: {path} could not be decoded ({exc})") from None
    return frames()
