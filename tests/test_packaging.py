"""Packaging: one version number, torch as a range with CI's pins in constraints.txt, packages
found rather than listed with all their data, licence metadata that covers the bundled photos,
scikit-image only in the ``eval`` extra. A built wheel is checked when ``COLORPLUG_WHEEL``
names it (.ci/run builds one and sets it)."""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

import colorplug

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
GALLERY = REPO / "colorplug" / "backends" / "exemplar" / "gallery"


def _requirements(items: list[str]) -> dict[str, Requirement]:
    return {Requirement(r).name.lower(): Requirement(r) for r in items}


def _constraints() -> dict[str, Requirement]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    return _requirements([ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()])


# ------------------------------------------------------------------ version
def test_the_version_lives_in_one_place():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert SETUPTOOLS["dynamic"]["version"] == {"attr": "colorplug.__version__"}
    Version(colorplug.__version__)  # a valid PEP 440 version


# ------------------------------------------------------------------ torch and constraints
def test_torch_is_a_range_and_constraints_pin_what_ci_uses():
    deps = _requirements(PROJECT["dependencies"])
    pins = _constraints()
    for name in ("torch", "torchvision"):
        spec = deps[name].specifier
        assert spec and all(s.operator == ">=" for s in spec), f"{name}: {spec} is not a floor"
        (pin,) = pins[name].specifier
        assert pin.operator == "==", f"constraints.txt must pin {name} exactly"
        assert spec.contains(pin.version), f"constraints.txt's {name} is outside {spec}"


def test_the_readme_install_line_passes_the_constraints():
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- ci-commands", 1)[1].split("```", 2)[1]
    installs = [ln for ln in block.splitlines() if ln.strip().startswith("pip install")]
    assert installs and all("-c constraints.txt" in ln for ln in installs), installs


# ------------------------------------------------------------------ packages and data
def _packages() -> dict[str, Path]:
    """Package name -> folder, as `[tool.setuptools.packages.find]` finds them."""
    from setuptools import find_packages

    find = SETUPTOOLS["packages"]["find"]
    found: dict[str, Path] = {}
    for where in find["where"]:
        for name in find_packages(where=str(REPO / where), include=find["include"]):
            found[name] = REPO / where / name.replace(".", "/")
    return found


def _shipped_sources() -> list[Path]:
    """The files of the three package trees (git's list where there is one)."""
    roots = ["colorplug", "napari_colorize", "gimp/colorplug_gimp"]
    try:
        out = subprocess.run(["git", "ls-files", "--", *roots], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout
        files = [REPO / ln for ln in out.splitlines() if ln]
    except (OSError, subprocess.CalledProcessError):
        files = [p for r in roots for p in (REPO / r).rglob("*") if p.is_file()]
    return [p for p in files if "__pycache__" not in p.parts and p.suffix != ".pyc"]


def test_every_folder_with_python_code_is_a_found_package():
    packages = _packages()
    assert {"colorplug", "colorplug.backends.exemplar", "colorplug.video", "napari_colorize",
            "colorplug_gimp"} <= set(packages)
    assert not any(n.startswith(("tests", "plugins", "benchmarks")) for n in packages)
    folders = {p.parent for p in _shipped_sources() if p.suffix == ".py"}
    missing = sorted(str(f.relative_to(REPO)) for f in folders if f not in packages.values())
    assert not missing, f"folders with .py files but no __init__.py (left out): {missing}"


def test_every_data_file_is_matched_by_package_data():
    packages = _packages()
    data = SETUPTOOLS["package-data"]
    covered: set[Path] = set()
    for pkg, patterns in data.items():
        assert pkg in packages, f"package-data for {pkg!r}, which is not a found package"
        for pattern in patterns:
            matched = set(packages[pkg].glob(pattern))
            assert matched, f"package-data {pkg!r}: {pattern!r} matches no file"
            covered |= matched
    owners = sorted(packages.values(), key=lambda p: len(p.parts), reverse=True)
    left_out = []
    for f in _shipped_sources():
        owner = next((p for p in owners if p in f.parents), None)
        if f.suffix == ".py" and owner == f.parent:
            continue  # a module of its package
        if f not in covered:
            left_out.append(str(f.relative_to(REPO)))
    assert not left_out, f"not in the wheel (add to [tool.setuptools.package-data]): {left_out}"


# ------------------------------------------------------------------ licences
_SPDX = {"CC0": "CC0-1.0", "BSD-2-clause": "BSD-2-Clause", "BSD-3-clause-Google": "BSD-3-Clause"}


def _spdx(stated: str) -> str:
    stated = stated.split(" (")[0]
    return "LicenseRef-Public-Domain" if stated.startswith("public-domain") \
        else _SPDX.get(stated, stated)


def test_the_licence_expression_covers_every_bundled_photo():
    from packaging.licenses import canonicalize_license_expression

    expression = PROJECT["license"]
    assert canonicalize_license_expression(expression) == expression
    terms = set(re.split(r"\s+AND\s+", expression))
    rows = list(csv.DictReader((GALLERY / "SOURCES.csv").open()))
    assert {r["file"] for r in rows} == {p.name for p in GALLERY.glob("*.jpg")}
    stated = {_spdx(r["licence"]) for r in rows}
    assert stated <= terms, f"licences of gallery photos missing from `license`: {stated - terms}"
    assert "MIT" in terms and "CC-BY-SA-4.0" not in terms  # no -SA photo is shipped
    listing = (REPO / "LICENSES" / "bundled-photos.md").read_text()
    unlisted = [r["file"] for r in rows if f"`{r['file']}`" not in listing]
    assert not unlisted, f"LICENSES/bundled-photos.md does not list {unlisted}"
    for pattern in PROJECT["license-files"]:
        assert list(REPO.glob(pattern)), f"license-files {pattern!r} matches no file"


# ------------------------------------------------------------------ scikit-image: eval extra
def test_scikit_image_is_only_in_the_eval_extra():
    assert "scikit-image" not in _requirements(PROJECT["dependencies"])
    extras = PROJECT["optional-dependencies"]
    assert "scikit-image" in _requirements(extras["eval"])
    assert "colorplug[eval]" in extras["dev"]


def test_without_scikit_image_the_metrics_say_how_to_install_it():
    code = (
        "import sys; sys.modules['skimage'] = None\n"  # as if not installed
        "import numpy as np, colorplug\n"
        "from colorplug import evaluate as ev\n"
        "img = np.zeros((8, 8, 3), np.uint8)\n"
        "for f in (ev.psnr, ev.ssim, ev.delta_e2000):\n"
        "    try:\n"
        "        f(img, img + 1)\n"
        "    except colorplug.ColorplugError as e:\n"
        "        print('ERR', e)\n"
        "print('colourfulness', ev.colourfulness(img))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.count("ERR") == 3 and "pip install 'colorplug[eval]'" in out
    assert "colourfulness 0.0" in out  # what needs no scikit-image still works


# ------------------------------------------------------------------ a built wheel
@pytest.mark.skipif(not os.environ.get("COLORPLUG_WHEEL"),
                    reason="set COLORPLUG_WHEEL to a built wheel (.ci/run does)")
def test_the_wheel_holds_the_packages_data_and_licences():
    with zipfile.ZipFile(os.environ["COLORPLUG_WHEEL"]) as whl:
        names = set(whl.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = whl.read(meta_name).decode()
    expected = {str(f.relative_to(REPO)) for f in _shipped_sources()}
    expected = {n.replace("gimp/colorplug_gimp/", "colorplug_gimp/", 1) for n in expected}
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    for needed in ("colorplug/weights/manifest.json", "napari_colorize/napari.yaml",
                   "colorplug_gimp/colorplug_gimp.py", "colorplug/samples/astronaut_gray.png",
                   "colorplug/backends/exemplar/gallery/index.npz",
                   "colorplug/backends/exemplar/gallery/SOURCES.csv"):
        assert needed in names
    assert not any(n.startswith(("tests/", "plugins/", "benchmarks/", "docs/")) for n in names)
    assert f"Version: {colorplug.__version__}\n" in meta
    assert f"License-Expression: {PROJECT['license']}\n" in meta
    assert "License-File: LICENSES/bundled-photos.md" in meta
    assert re.search(r"^Requires-Dist: torch>=", meta, re.M)
    assert not re.search(r"^Requires-Dist: (scikit-image|napari|dask)[^;]*$", meta, re.M)
