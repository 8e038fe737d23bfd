"""Evaluation of backends on colour photos: PSNR, SSIM, colourfulness, ΔCF and CIEDE2000.

For each colour photo the grayscale input is made from its own L* (so the input has
exactly the photo's lightness), every backend colorizes it, and the result is compared
with the photo. The pseudo-backend ``gray`` (zero chroma) is the baseline.
"""
from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import color
from .errors import ColorplugError
from .image import (convert_dtype, find_images, intensity_to_unit, read_image,
                    write_bytes_atomic, write_image)


# ------------------------------------------------------------------------ metrics
def _skimage(module: str) -> Any:
    """``skimage.<module>``: scikit-image comes with colorplug's ``eval`` extra only."""
    import importlib

    try:
        return importlib.import_module(f"skimage.{module}")
    except ImportError as exc:
        raise ColorplugError(
            "PSNR, SSIM and CIEDE2000 (colorplug eval) need scikit-image, which colorplug "
            "installs only with its 'eval' extra: pip install 'colorplug[eval]' (or pip "
            f"install scikit-image); importing it failed with {type(exc).__name__}: {exc}"
        ) from exc


def psnr(output: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of 8-bit sRGB images (inf for identical images)."""
    peak_signal_noise_ratio = _skimage("metrics").peak_signal_noise_ratio

    if np.array_equal(output, truth):
        return float("inf")
    return float(peak_signal_noise_ratio(truth, output, data_range=255))


def ssim(output: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM over the RGB channels of 8-bit images (Wang et al. 2004, 7x7 window)."""
    structural_similarity = _skimage("metrics").structural_similarity

    side = min(output.shape[:2])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return float(np.allclose(output, truth))
    return float(structural_similarity(truth, output, channel_axis=-1, data_range=255,
                                       win_size=win))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) M3 on 8-bit sRGB: sigma_rgyb + 0.3 * mu_rgyb.

    rg = R - G and yb = (R + G) / 2 - B, signed (no absolute values).
    """
    x = rgb[..., :3].astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def delta_e2000(output: np.ndarray, truth: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference between two 8-bit sRGB images."""
    deltaE_ciede2000 = _skimage("color").deltaE_ciede2000

    a = color.rgb_to_lab(output[..., :3].astype(np.float64) / 255.0)
    b = color.rgb_to_lab(truth[..., :3].astype(np.float64) / 255.0)
    return float(deltaE_ciede2000(b, a).mean())


#: How a grayscale input is made from a colour photo: its CIE L* (the default: what our
#: models see in training), or the luma weights of Rec. 601 (PIL's ``convert("L")``,
#: OpenCV's ``COLOR_RGB2GRAY``) and Rec. 709 (HDTV) on the gamma-encoded values, as most
#: tools make gray. Issue 30 measures the default with both kinds.
GRAY_METHODS = {"lstar": None, "rec601": (0.299, 0.587, 0.114),
                "rec709": (0.2126, 0.7152, 0.0722)}


def gray_input(truth: np.ndarray, method: str = "lstar") -> np.ndarray:
    """The uint8 grayscale image made from the colour image by `method` (GRAY_METHODS)."""
    if method not in GRAY_METHODS:
        raise ValueError(f"unknown gray method {method!r}; one of {sorted(GRAY_METHODS)}")
    rgb = truth[..., :3].astype(np.float64) / 255.0
    weights = GRAY_METHODS[method]
    if weights is None:
        gray = color.gray_from_lightness(color.lightness_from_rgb(rgb))
    else:
        gray = rgb @ np.asarray(weights)
    return np.rint(np.clip(gray, 0, 1) * 255).astype(np.uint8)


# ------------------------------------------------------------------------ running
@dataclass
class Row:
    backend: str
    image: str
    psnr: float
    ssim: float
    cf: float
    cf_truth: float
    delta_e: float
    seconds: float
    cf_reference: float = float("nan")  # colourfulness of the reference used, if any
    #: the backend's per-pixel confidence (`Colorizer.confidence`), where it has one: its
    #: mean, and the share of pixels at or above CONFIDENT_AT ("confident colour"); on the
    #: backend's own scale, so compare a backend with itself
    confidence_mean: float = float("nan")
    confident_share: float = float("nan")


CONFIDENT_AT = 0.5


def confidence_stats(confidence_map: np.ndarray) -> dict[str, float]:
    """Mean confidence and the share of pixels with confidence >= CONFIDENT_AT."""
    return {"confidence_mean": float(confidence_map.mean()),
            "confident_share": float((confidence_map >= CONFIDENT_AT).mean())}


def load_photos(data: Sequence[str | Path] | str | Path, *, names: set[str] | None = None,
                max_side: int = 256, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """Colour photos as uint8 RGB, longest side reduced to `max_side` (0: full size)."""
    from PIL import Image

    photos = []
    for path in find_images(data):
        if names is not None and path.name not in names:
            continue
        arr = read_image(path)
        if arr.ndim == 2:
            continue  # grayscale photos have no colour to compare against
        if arr.dtype != np.uint8:
            arr = convert_dtype(intensity_to_unit(arr[..., :3], "dtype"), "uint8")
        img = Image.fromarray(arr[..., :3])
        if max_side and max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.LANCZOS)
        photos.append((path.name, np.asarray(img)))
        if limit and len(photos) >= limit:
            break
    return photos


def _option_value(text: str) -> Any:
    """An option's text as the value it spells: true/false, an integer, a decimal number
    (``temperature=0.38``), else the text itself (a path, a name)."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if low not in ("nan", "inf", "-inf", "infinity", "-infinity") else text


def parse_backend_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``NAME`` or ``LABEL=NAME?key=value&key=value`` -> (label, name, options).

    Options are passed to `colorplug.get` (e.g. ``cgan-resnet=cgan?weights=g.safetensors``,
    ``warp=exemplar?refine=false``, ``fusion?temperature=0.2``); "true"/"false", integers
    and decimal numbers are converted.
    """
    label, _, rest = spec.partition("=") if "=" in spec.split("?")[0] else (spec.split("?")[0], "", spec)
    name, _, query = rest.partition("?")
    options: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            from .errors import InputError
            raise InputError(f"backend option {item!r} in {spec!r} is not key=value")
        options[key] = _option_value(value)
    return label, name, options


#: Side of the square whose mean colour a simulated hint carries, and the hint's radius in
#: pixels (a 5x5 square's mean on a disc of radius 2: about the same 5 px across).
HINT_PATCH = 5
HINT_RADIUS = 2.0


def simulated_hints(truth: np.ndarray, k: int, seed: int, name: str = "") -> list[tuple]:
    """The protocol of Zhang et al. 2017 for user hints: `k` points at uniformly random
    places, each carrying the truth's mean colour over the 5x5 square around it; seeded by
    (`seed`, the photo's `name`) so every backend gets the very same hints. Points as
    `colorplug.hints` takes them: (x, y, (r, g, b), radius)."""
    import zlib

    h, w = truth.shape[:2]
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    half = HINT_PATCH // 2
    points = []
    for y, x in zip(rng.integers(0, h, k), rng.integers(0, w, k)):
        patch = truth[max(0, y - half):y + half + 1, max(0, x - half):x + half + 1, :3]
        colour = tuple(float(v) for v in patch.reshape(-1, 3).astype(np.float64).mean(0))
        points.append((int(x), int(y), colour, HINT_RADIUS))
    return points


def evaluate(backends: Sequence[str], photos: list[tuple[str, np.ndarray]], *,
             device: str = "auto", reference: Any = None, self_reference: bool = False,
             references: dict[str, np.ndarray] | None = None,
             progress: Callable[[int, int], None] | None = None,
             simulated_hint_points: int | None = None, hints_seed: int = 0
             ) -> tuple[list[Row], dict[str, dict[str, float]], dict[str, list[np.ndarray]]]:
    """Colorize every photo with every backend; return per-image rows, summaries, outputs.

    `backends` are specs for `parse_backend_spec`. The reference for a photo: the photo
    itself (`self_reference`), else `references[name]` (e.g. another photo of the same kind
    of scene), else the one `reference`. With `simulated_hint_points` = k, backends that
    take hints get k simulated hints per photo (`simulated_hints`, seeded by `hints_seed`;
    k = 0: none), the same for every backend.
    """
    from . import get

    _skimage("metrics"), _skimage("color")  # say what to install before colorizing anything
    rows: list[Row] = []
    outputs: dict[str, list[np.ndarray]] = {}
    total = len(backends) * len(photos)
    done = 0
    for spec in backends:
        label, name, options = parse_backend_spec(spec)
        colorizer = get(name, device=device, **options)
        outputs[label] = []
        for image_name, truth in photos:
            gray = gray_input(truth)
            ref = truth if self_reference else (references or {}).get(image_name, reference)
            uses_ref = colorizer.info.accepts_reference and ref is not None
            kwargs = {"reference": ref} if uses_ref else {}
            if simulated_hint_points and colorizer.info.supports_hints:
                kwargs["hints"] = simulated_hints(truth, simulated_hint_points, hints_seed,
                                                  image_name)
            t0 = time.perf_counter()
            out = colorizer.colorize(gray, **kwargs)
            seconds = time.perf_counter() - t0
            outputs[label].append(out)
            rows.append(Row(label, image_name, psnr(out, truth), ssim(out, truth),
                            colourfulness(out), colourfulness(truth), delta_e2000(out, truth),
                            seconds, colourfulness(np.asarray(ref)[..., :3]) if uses_ref
                            else float("nan")))
            done += 1
            if progress:
                progress(done, total)
    return rows, summarize(rows), outputs


def summarize(rows: list[Row]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r.backend for r in rows):
        rs = [r for r in rows if r.backend == name]
        finite_psnr = [min(r.psnr, 100.0) for r in rs]
        cf = float(np.mean([r.cf for r in rs]))
        cf_truth = float(np.mean([r.cf_truth for r in rs]))
        summary[name] = {"images": len(rs), "psnr": float(np.mean(finite_psnr)),
                         "ssim": float(np.mean([r.ssim for r in rs])), "cf": cf,
                         "cf_truth": cf_truth, "delta_cf": abs(cf - cf_truth),
                         "delta_e": float(np.mean([r.delta_e for r in rs])),
                         # |CF(output) - CF(reference)| per image: colours follow the reference
                         "delta_cf_ref": float(np.mean([abs(r.cf - r.cf_reference) for r in rs]))
                         if all(np.isfinite(r.cf_reference) for r in rs) else float("nan"),
                         "seconds_per_image": float(np.mean([r.seconds for r in rs]))}
        if all(np.isfinite(r.confident_share) for r in rs):
            summary[name]["confidence_mean"] = float(np.mean([r.confidence_mean for r in rs]))
            summary[name]["confident_share"] = float(np.mean([r.confident_share for r in rs]))
    return summary


def format_table(summary: dict[str, dict[str, float]]) -> str:
    head = f"{'backend':<14}{'images':>7}{'PSNR':>8}{'SSIM':>8}{'CF':>8}{'CF_gt':>8}" \
           f"{'ΔCF':>8}{'ΔE00':>8}{'s/img':>8}{'ΔCFref':>8}"
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        lines.append(f"{name:<14}{s['images']:>7d}{s['psnr']:>8.2f}{s['ssim']:>8.4f}"
                     f"{s['cf']:>8.2f}{s['cf_truth']:>8.2f}{s['delta_cf']:>8.2f}"
                     f"{s['delta_e']:>8.2f}{s['seconds_per_image']:>8.3f}"
                     f"{s.get('delta_cf_ref', float('nan')):>8.2f}")
    return "\n".join(lines)


def contact_sheet(photos: list[tuple[str, np.ndarray]], outputs: dict[str, list[np.ndarray]],
                  *, rows: int = 12, cell: int = 160) -> np.ndarray:
    """Rows of gray | each backend's output | truth, each cell `cell` pixels square-fit."""
    from PIL import Image

    def fit(arr: np.ndarray) -> np.ndarray:
        img = Image.fromarray(arr[..., :3] if arr.ndim == 3 else arr).convert("RGB")
        img.thumbnail((cell, cell), Image.LANCZOS)
        canvas = Image.new("RGB", (cell, cell), (255, 255, 255))
        canvas.paste(img, ((cell - img.size[0]) // 2, (cell - img.size[1]) // 2))
        return np.asarray(canvas)

    lines = [header_row(["input (gray)", *outputs, "truth"], cell)]
    for i, (_, truth) in enumerate(photos[:rows]):
        cells = [fit(gray_input(truth))] + [fit(outputs[b][i]) for b in outputs] + [fit(truth)]
        lines.append(np.concatenate(cells, axis=1))
    return np.concatenate(lines, axis=0)


def header_row(labels: Sequence[str], cell: int, height: int = 24) -> np.ndarray:
    """A white strip with one centred label per column (the contact sheet's header)."""
    from PIL import Image, ImageDraw, ImageFont

    strip = Image.new("RGB", (cell * len(labels), height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default()
    for i, label in enumerate(labels):
        text = str(label)
        while len(text) > 3 and draw.textlength(text, font=font) > cell - 6:
            text = text[:-2] + "…"
        width = draw.textlength(text, font=font)
        draw.text((i * cell + (cell - width) / 2, 6), text, fill=(0, 0, 0), font=font)
    return np.asarray(strip)


def json_safe(value: Any) -> Any:
    """NaN and inf (a metric that does not apply) become null: strict JSON for any reader."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_report(out_dir: str | Path, rows: list[Row], summary: dict[str, dict[str, float]],
                 sheet: np.ndarray | None, meta: dict[str, Any] | None = None) -> None:
    """CSV of per-image rows, JSON of summary + rows, contact_sheet.png; all atomic."""
    out_dir = Path(out_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(asdict(rows[0]).keys()) if rows else ["backend"])
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    write_bytes_atomic(out_dir / "metrics.csv", buf.getvalue().encode(), overwrite=True)
    report = {"summary": summary, "meta": meta or {}, "rows": [asdict(r) for r in rows]}
    write_bytes_atomic(out_dir / "metrics.json",
                       json.dumps(json_safe(report), indent=2, allow_nan=False).encode(),
                       overwrite=True)
    if sheet is not None:
        write_image(out_dir / "contact_sheet.png", sheet, overwrite=True)


# ------------------------------------------------------------------------ video
