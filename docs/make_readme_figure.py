"""Make docs/img/readme_result.png: the bundled sample, gray | autoencoder | fusion (the
default backend, its shipped weights) | original. Run after the default weights change."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import colorplug

OUT = Path(__file__).with_name("img") / "readme_result.png"


def main() -> None:
    gray = colorplug.sample("astronaut_gray")
    truth = colorplug.sample("astronaut_color")
    panels = [np.stack([gray] * 3, -1), colorplug.get("autoencoder", device="cpu").colorize(gray),
              colorplug.get("fusion", device="cpu").colorize(gray), truth[..., :3]]
    side = 256
    row = np.concatenate([np.asarray(Image.fromarray(p).resize((side, side), Image.LANCZOS))
                          for p in panels], axis=1)
    Image.fromarray(row).save(OUT, optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
