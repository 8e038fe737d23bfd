"""Shared fixtures: small generated images and real entry-point plugin distributions."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import colorplug.registry as registry_mod

REPO = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--property-backend", action="append", dest="property_backend",
                     metavar="NAME", default=None,
                     help="run tests/test_properties.py against backend NAME (repeatable) "
                          "instead of the built-ins (tests/test_tests_can_fail.py points it "
                          "at deliberately broken plugins)")


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Every test starts from a registry that has not loaded plugins yet."""
    monkeypatch.delenv("COLORPLUG_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("COLORPLUG_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("COLORPLUG_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("COLORPLUG_DEFAULT_BACKEND", raising=False)
    registry_mod._default = None
    yield
    registry_mod._default = None


@pytest.fixture
def make_plugin(tmp_path, monkeypatch):
    """Install a real distribution (dist-info + module) on sys.path for this test.

    ``make_plugin(dist, {"ep_name": "module:attr"}, {"module": "source"})`` returns the
    folder; entry points are discovered by importlib.metadata exactly as after pip install.
    """
    site = tmp_path / "site"
    site.mkdir()

    def make(dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        eps = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[colorplug]\n{eps}")
        for mod, src in modules.items():
            (site / f"{mod}.py").write_text(textwrap.dedent(src))
        return site

    monkeypatch.syspath_prepend(str(site))
    old = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(site), old) if p))
    yield make
    for mod in list(sys.modules):
        if mod.startswith("cp_test"):
            del sys.modules[mod]


PLUGIN_SOURCE = '''
import numpy as np
import colorplug
from colorplug.pipeline import ChromaColorizer

INFO = colorplug.BackendInfo(name="{name}", description="test backend painting a*={a}")

class Tint(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        return [np.full((2, 2, 2), [{a}, 0.0], np.float32) for _ in lightness]

@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("{name}", lambda weights=None, device="auto", **o: Tint(**o), INFO)
'''


# A backend that needs a reference and paints its mean chroma (napari and GIMP tests).
REF_PLUGIN = '''
import numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
INFO = colorplug.BackendInfo(name="refmean", description="test: mean chroma of the reference",
                             needs_reference=True)
class RefMean(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        ab = reference[..., 1:].reshape(-1, 2).mean(0)
        return [np.broadcast_to(ab, (2, 2, 2)).astype(np.float32) for _ in lightness]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("refmean", lambda weights=None, device="auto", **o: RefMean(**o), INFO)
'''


@pytest.fixture
def gray_image() -> np.ndarray:
    """A 37x53 uint8 gradient with a bright disc: odd sizes, full tonal range."""
    y, x = np.mgrid[0:37, 0:53]
    img = (x * 255 / 52).astype(np.float64)
    img[(y - 18) ** 2 + (x - 26) ** 2 < 100] = 230
    return img.astype(np.uint8)


def make_photo(seed: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A synthetic colour 'photo': smooth colour fields with a few coloured shapes."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(x * rng.uniform(2, 6) + rng.uniform(0, 6)),
                     np.cos(y * rng.uniform(2, 6) + rng.uniform(0, 6)),
                     np.sin((x + y) * rng.uniform(2, 6))], -1) * 0.35 + 0.5
    for _ in range(3):
        cy, cx, r = rng.uniform(0, 1, 3) * [h, w, min(h, w) / 3]
        mask = (np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2 < r * r
        base[mask] = rng.uniform(0, 1, 3)
    return np.clip(base * 255, 0, 255).astype(np.uint8)


@pytest.fixture
def photo_dir(tmp_path) -> Path:
    """Six small synthetic colour photos in a folder (PNG and JPEG)."""
    from PIL import Image

    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    for i in range(6):
        target = d / ("sub" if i % 2 else "") / f"photo{i}.{'png' if i < 4 else 'jpg'}"
        Image.fromarray(make_photo(i)).save(target)
    return d
