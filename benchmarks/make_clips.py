"""Synthetic video clips with colour ground truth: camera moves over held-out photos.

    python benchmarks/make_clips.py --split test --out clips/ [--per-move 2] [--frames 60]

Moves: ``pan`` (window sliding across the photo), ``zoom`` (1.0 -> 1.4 about the centre),
``rotate`` (+-4 degrees, slightly zoomed in so no border shows) and ``cut`` (a pan over one
photo, then a pan over another). Each clip is ``NAME.npy``: (T, H, W, 3) uint8 RGB ground
truth (the gray input is made from its L* by colorplug.evaluate.gray_input). Photos are
from /work/photos512 by manifest.csv's package column: ``test`` = scratch,
mate-backgrounds, plasma-workspace-wallpapers (for reporting only); ``val`` = every other
package (for tuning thresholds and blends). Clips are data: the output folder is git-ignored.

A real clip: ``--video FILE`` decodes the first --frames frames of a colour video with PyAV,
resized to --size, into ``test_real_<stem>.npy`` (e.g. OpenCV's ``vtest.avi`` from Debian's
opencv-doc, which fetch_photos.sh unpacks under /tmp/fetch_photos_work).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np

PHOTOS = Path(os.environ.get("COLORPLUG_PHOTOS", "/work/photos512"))
TEST_PACKAGES = {"scratch", "mate-backgrounds", "plasma-workspace-wallpapers"}
MOVES = ("pan", "zoom", "rotate", "cut")


def photos(split: str, min_side: int = 300) -> list[Path]:
    """Colour photos of a split, sorted by name, at least `min_side` on the short side."""
    from PIL import Image

    out = []
    with open(PHOTOS / "manifest.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if (row["package"] in TEST_PACKAGES) != (split == "test"):
                continue
            path = PHOTOS / row["file"]
            if not path.exists() or min(int(row["width"]), int(row["height"])) < min_side:
                continue
            with Image.open(path) as img:
                if img.mode not in ("RGB", "RGBA", "P"):
                    continue
            out.append(path)
    return sorted(out)


def _load(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _frames(photo: np.ndarray, move: str, n: int, size: tuple[int, int]) -> np.ndarray:
    """(n, h, w, 3) frames of `move` over `photo`: an affine map from output to photo."""
    import cv2

    h, w = size
    ph, pw = photo.shape[:2]
    base = min(ph / h, pw / w) * 0.8  # the window covers 80 % of the photo's short fit
    out = np.empty((n, h, w, 3), np.uint8)
    for t in range(n):
        s = t / max(1, n - 1)
        scale, angle, cx, cy = base, 0.0, pw / 2, ph / 2
        if move == "pan":
            span = pw - w * base
            cx = w * base / 2 + span * (0.1 + 0.8 * s)
        elif move == "zoom":
            scale = base / (1.0 + 0.4 * s)
        elif move == "rotate":
            angle, scale = 4.0 * np.sin(2 * np.pi * s), base * 0.9
        c, si = np.cos(np.radians(angle)) * scale, np.sin(np.radians(angle)) * scale
        # photo = A @ [x - w/2, y - h/2] + centre
        m = np.array([[c, -si, cx - c * w / 2 + si * h / 2],
                      [si, c, cy - si * w / 2 - c * h / 2]], np.float64)
        out[t] = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT)
    return out


def make_clip(paths: list[Path], move: str, n: int = 60, size: tuple[int, int] = (240, 320)
              ) -> np.ndarray:
    """One clip; `cut` uses two photos (half the frames each), other moves the first."""
    if move == "cut":
        half = n // 2
        return np.concatenate([_frames(_load(paths[0]), "pan", half, size),
                               _frames(_load(paths[1]), "pan", n - half, size)])
    return _frames(_load(paths[0]), move, n, size)


def video_clip(path: Path, n: int, size: tuple[int, int], start: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB: frames start..start+n of a colour video, area-resized."""
    import av
    import cv2

    h, w = size
    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i < start:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            frames.append(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA))
            if len(frames) == n:
                break
    if len(frames) < n:
        raise SystemExit(f"{path}: only {len(frames)} frames after frame {start}")
    return np.stack(frames)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=["val", "test"])
    p.add_argument("--video", type=Path, help="a real colour video to cut one test clip from")
    p.add_argument("--start", type=int, default=0, help="--video: first frame")
    p.add_argument("--out", required=True, help="folder for NAME.npy clips (git-ignored)")
    p.add_argument("--per-move", type=int, default=2, help="clips per move")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--size", default="320x240", help="WxH")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.video:
        clip = video_clip(args.video, args.frames, (h, w), args.start)
        name = f"test_real_{args.video.stem}"
        np.save(out / f"{name}.npy", clip)
        print(name, clip.shape, args.video)
        return
    if not args.split:
        p.error("give --split or --video")
    pool = photos(args.split)
    rng = np.random.default_rng(args.seed)
    order = list(rng.permutation(len(pool)))
    index: dict[str, list[str]] = {}
    for move in MOVES:
        for i in range(args.per_move):
            picks = [pool[order.pop()] for _ in range(2 if move == "cut" else 1)]
            clip = make_clip(picks, move, args.frames, (h, w))
            name = f"{args.split}_{move}_{i}"
            np.save(out / f"{name}.npy", clip)
            index[name] = [q.name for q in picks]
            print(name, clip.shape, ", ".join(index[name]))
    (out / f"{args.split}_index.json").write_text(json.dumps(index, indent=1))


if __name__ == "__main__":
    main()
