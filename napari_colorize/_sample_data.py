"""Sample data: the bundled grayscale astronaut and a colour reference photo."""
from __future__ import annotations

from pathlib import Path

import colorplug
from colorplug.image import read_image

SAMPLES = Path(colorplug.__file__).resolve().parent / "samples"


def sample() -> list[tuple]:
    gray = read_image(SAMPLES / "astronaut_gray.png")
    colour = read_image(SAMPLES / "astronaut_color.png")
    return [(gray, {"name": "astronaut (gray)"}, "image"),
            (colour, {"name": "astronaut (colour reference)", "rgb": True}, "image")]
