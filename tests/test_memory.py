"""Bounded memory for huge images: the full-size work runs in strips, and an image the
machine cannot fit is a ResourceError naming it, not a bare MemoryError."""
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import colorplug
from colorplug.image import resize_map
from colorplug.pipeline import ChromaColorizer
from colorplug.protocol import BackendInfo

ROOT = Path(__file__).resolve().parents[1]


class Flat(ChromaColorizer):
    """A fixed small chroma map, so all the work is the pipeline's own."""

    info = BackendInfo(name="flat", description="test")

    def predict_chroma(self, lightness, *, reference, hints):
        ab = np.zeros((16, 16, 2), np.float32)
        ab[..., 0], ab[..., 1] = 40.0, -20.0
        return [ab for _ in lightness]


def test_colorize_peak_is_lightness_and_output_plus_strips():
    """Peak numpy memory of colorizing a 2048² RGB image: its L* (4 bytes/pixel) and the
    output (3) plus strips of at most ~100 MB, where converting it whole took ~51
    bytes/pixel (200 MB)."""
    side = 2048
    rgb = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    colorizer = Flat()
    tracemalloc.start()
    try:
        out = colorizer.colorize(rgb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert peak < side * side * (4 + 3) + 100 * 2**20, f"peak {peak / 2**20:.0f} MB"


@pytest.mark.parametrize("shape,size", [((1500, 1000), (256, 170)),  # strips, shrinking
                                        ((1500, 1000), (1200, 2000)),  # strips, enlarging
                                        ((2100, 600), (80, 280))])
def test_strip_wise_resize_equals_resizing_whole(shape, size):
    values = np.random.default_rng(1).uniform(0, 100, shape).astype(np.float32)
    h, w = shape
    resample = Image.BOX if (w >= size[0] and h >= size[1]) else Image.BILINEAR
    whole = np.asarray(Image.fromarray(values, mode="F").resize(size, resample=resample))
    ours = resize_map(values, *size)
    assert ours.shape == (size[1], size[0]) and ours.dtype == np.float32
    assert np.abs(ours - whole).max() < 1e-4


CHILD = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import colorplug
    image = np.full((6000, 5000), 128, np.uint8)
    colorizer = colorplug.get("gray")
    vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
              if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + 64 * 2**20,) * 2)  # its L* needs 114 MB
    try:
        colorizer.colorize(image)
    except colorplug.ResourceError as exc:
        print("ResourceError:", exc)
        sys.exit(3)
    except MemoryError:
        print("bare MemoryError")
        sys.exit(4)
    print("fitted")
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_an_image_the_machine_cannot_fit_is_a_resource_error():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "5000x6000 image" in proc.stdout and "GB are needed" in proc.stdout
    assert issubclass(colorplug.ResourceError, MemoryError)  # `except MemoryError` still works


def test_reference_converted_in_strips_equals_whole():
    from colorplug import color
    from colorplug.image import prepare_reference

    ref = np.random.default_rng(2).integers(0, 256, (1100, 1000, 3), dtype=np.uint8)
    lab = prepare_reference(ref)  # two strips
    assert lab.dtype == np.float32 and lab.shape == ref.shape
    assert np.array_equal(lab, color.rgb_to_lab(ref.astype(np.float32) / np.float32(255)))
    gray = np.repeat(ref[..., :1], 3, axis=-1)
    with pytest.raises(colorplug.GrayscaleReferenceError, match="no colour"):
        prepare_reference(gray)
