"""colorplug's colour hints -> siggraph17's inputs (a*b* hint map + mask at its resolution).

Accepted forms, as every colorplug backend with hints takes them (napari Points give the
first, GIMP's hints layer the second):
- points ``[(x, y, colour), (x, y, colour, radius), ...]``: colour an RGB tuple (0..255 or
  0..1) or ``"#rrggbb"``, radius in pixels of the image (default 1.5);
- an RGBA image of the image's size: pixels with alpha > 0 are hints;
- an RGB image of the image's size: coloured pixels (chroma > 3) are hints;
- ``{"image": rgb, "mask": bool (H, W)}``: an explicit mask (gray hints possible).
"""
from __future__ import annotations

import numpy as np

from colorplug.hints import hint_maps as full_resolution  # noqa: F401 - colorplug's parser
from colorplug.image import resize_map


def at_size(ab: np.ndarray, mask: np.ndarray, width: int, height: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Hints brought to the network's (height, width): a cell is hinted when any of its
    pixels is, with the mean a*b* of its hinted pixels. -> (ab (2, h, w), mask (1, h, w))."""
    m = mask.astype(np.float32)
    m_small = resize_map(m, width, height)
    ab_small = np.stack([resize_map(ab[..., i] * m, width, height) for i in (0, 1)])
    hinted = m_small > 1e-6
    ab_small = np.where(hinted, ab_small / np.maximum(m_small, 1e-6), 0.0)
    return ab_small.astype(np.float32), hinted[None].astype(np.float32)
