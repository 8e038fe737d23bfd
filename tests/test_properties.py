"""Property-based tests (hypothesis) of the public entry points: the API (`colorplug.get`,
`Colorizer.colorize` / `colorize_batch`, `colorplug.colorize`), the CLI and the GIMP
bridge's requests, each against real backends.

Every outcome is split; "it raised some ColorplugError" is never enough:
- an input the API documents as valid (docs/api.md: numpy (H, W), (H, W, 1), (H, W, 3) or
  (H, W, 4) in uint8, uint16 or float, other integers with an explicit intensity_range;
  PIL images; torch tensors, channels-first too) MUST succeed: an array of the input's size,
  (H, W, 3), or (H, W, 4) carrying the input's alpha, of the requested output_dtype, whose
  lightness is the input's as the intensity_range table of docs/api.md defines it;
- an invalid input MUST raise the InputError subclass that names its problem;
- a BackendError (a backend that crashed, or returned something that is not an image) or
  any other exception is a failure, whatever the input.
CLI: valid image files give exit 0 and correct outputs; corrupt or missing files give exit
1 with a `failed: FILE: reason` line naming each, the others still colorized; never a
traceback, never a backend failure. GIMP bridge: a valid request gives a result and a
correct pixel file; any other request a named error, never "internal" nor "backend".

Backends: the API tests run against every built-in backend, the CLI and bridge tests against
`gray` (their code is the same for any backend). ``--property-backend NAME`` (repeatable,
see tests/conftest.py) runs every test here against the named backends instead: that is how
tests/test_tests_can_fail.py shows these tests fail for deliberately broken plugins.
Budget: well under a minute on 2 cores (examples per backend scale with its speed).
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import itertools
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import colorplug
from colorplug import color
from colorplug.errors import (GrayscaleReferenceError, IgnoredInputWarning, InputError,
                              MissingReferenceError, UnknownOptionError)

from .conftest import make_photo

SETTINGS = {"deadline": None, "derandomize": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.function_scoped_fixture,
                                      HealthCheck.filter_too_much]}


@dataclass(frozen=True)
class Budget:
    """Examples per test for one backend, and options making it fast (the same code paths
    at the smallest working size)."""

    valid: int = 20  # valid API calls (each runs the backend)
    invalid: int = 30  # invalid API calls (refused before the network)
    cli: int = 10  # CLI runs with valid files (and as many with corrupt ones)
    bridge: int = 15  # bridge requests
    options: dict = field(default_factory=dict)
    output_dtypes: tuple = ("uint8", "uint16", "float32")
    cheap: bool = True  # building it per call is affordable (`colorplug.colorize`)
    always_reference: bool = False  # give a reference it accepts on every call


HEAVY = ("uint8",)  # the output dtype is the shared recombination, tested through gray
BUILTINS = {
    "gray": Budget(valid=40, invalid=60),
    "autoencoder": Budget(valid=6, invalid=15, output_dtypes=HEAVY, cheap=False),
    "fusion": Budget(valid=6, invalid=15, options={"working_size": 64}, output_dtypes=HEAVY,
                     cheap=False),
    "cgan": Budget(valid=6, invalid=15, options={"working_size": 64}, output_dtypes=HEAVY,
                   cheap=False),
    # with a reference: its gallery path (k references, seconds) is test_exemplar_auto's
    "exemplar": Budget(valid=3, invalid=10, options={"working_size": 64},
                       output_dtypes=HEAVY, cheap=False, always_reference=True),
}
HOST_BACKENDS = ["gray"]  # the CLI and the bridge, by default
PLUGIN = Budget()  # a backend named with --property-backend


def pytest_generate_tests(metafunc):
    chosen = metafunc.config.getoption("property_backend", default=None)
    if "name" in metafunc.fixturenames:
        metafunc.parametrize("name", chosen or list(BUILTINS))
    if "host" in metafunc.fixturenames:
        metafunc.parametrize("host", chosen or HOST_BACKENDS)


def budget(name: str) -> Budget:
    return BUILTINS.get(name, PLUGIN)


def backend(name: str, output_dtype: str = "uint8"):
    return _backend(name, output_dtype)  # one cache key whether output_dtype is given or not


@functools.cache
def _backend(name: str, output_dtype: str):
    return colorplug.get(name, device="cpu", output_dtype=output_dtype, **budget(name).options)


REFERENCE = make_photo(3, (40, 30))
GRADIENT = np.arange(30, dtype=np.uint8).reshape(6, 5) * 8  # a valid gray image
HINTS = [(0, 0, "#c04020")]


def extra_inputs(info) -> dict:
    """What a backend needs besides the image (a reference, hints)."""
    return {"reference": REFERENCE if info.needs_reference else None,
            "hints": HINTS if info.needs_hints else None}


# ------------------------------------------------------------------------ the oracle
PERCENTILES = (0.5, 99.5)
TOP = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def display_range(data: np.ndarray, intensity_range: Any, rgb: bool) -> tuple[float, float]:
    """(lo, hi) mapped to black and white: the intensity_range table of docs/api.md."""
    mode = intensity_range
    if mode is None:
        unit = data.dtype.kind == "f" and data.min() >= 0 and data.max() <= 1
        mode = "dtype" if rgb or data.dtype == np.uint8 or unit else "percentile"
    top = TOP.get(data.dtype, 1.0)
    if mode == "dtype":
        return 0.0, top
    if mode == "percentile":
        lo, hi = (float(v) for v in np.percentile(data, PERCENTILES))
        return (lo, hi) if hi > lo else (0.0, max(top, hi))  # a constant image: its dtype's
    lo, hi = intensity_range
    return float(lo), float(hi)


def to_unit(data: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map [lo, hi] -> [0, 1], clipped, float64 (halved: no overflow near 1e308)."""
    return np.clip((data.astype(np.float64) / 2 - lo / 2) / (hi / 2 - lo / 2), 0.0, 1.0)


def expected_lightness(arr: np.ndarray, intensity_range: Any) -> np.ndarray:
    """L* (H, W) an input has, which the output must keep."""
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    rgb = arr.ndim == 3
    data = arr[..., :3] if rgb else arr
    unit = to_unit(data, *display_range(data, intensity_range, rgb))
    return color.lightness_from_rgb(unit) if rgb else color.lightness_from_gray(unit)


def input_alpha(arr: np.ndarray) -> np.ndarray | None:
    """An RGBA input's alpha in [0, 1] (uint8 / uint16 / float in [0, 1] only here)."""
    if arr.ndim == 3 and arr.shape[-1] == 4:
        return arr[..., 3].astype(np.float64) / TOP.get(arr.dtype, 1.0)
    return None


OUT_TOP = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}


def check_image(out: Any, arr: np.ndarray, intensity_range: Any, output_dtype: str,
                what: str, *, lossy: bool = False, keeps_alpha: bool = True) -> None:
    """`out` is a correct colorization of `arr` (the input as numpy, (H, W) or (H, W, C))."""
    alpha = input_alpha(arr) if keeps_alpha else None
    shape = arr.shape[:2] + (4 if alpha is not None else 3,)
    assert isinstance(out, np.ndarray), \
        f"{what}: returned {type(out).__name__}, not a numpy image"
    assert out.shape == shape, f"{what}: result shaped {out.shape}; expected {shape}"
    assert out.dtype == np.dtype(output_dtype), \
        f"{what}: result dtype {out.dtype}; output_dtype {output_dtype} was asked for"
    unit = out.astype(np.float64) / OUT_TOP[output_dtype]
    assert np.isfinite(unit).all() and unit.min() >= -1e-3 and unit.max() <= 1 + 1e-3, \
        f"{what}: result values outside the display range (NaN, inf or beyond [0, 1])"
    unit = np.clip(unit, 0.0, 1.0)
    if lossy:
        return
    dl = np.abs(color.lightness_from_rgb(unit[..., :3]) - expected_lightness(arr, intensity_range))
    tolerance = 1.5 if output_dtype == "uint8" else 0.5  # 8-bit rounding of the output
    assert dl.max() < tolerance, (f"{what}: the input's lightness was not kept: max |dL*| = "
                                  f"{dl.max():.2f} (tolerance {tolerance})")
    if alpha is not None:
        da = np.abs(unit[..., 3] - alpha).max()
        assert da <= 0.5 / OUT_TOP[output_dtype] + 1e-6, \
            f"{what}: the input's alpha was not kept: max difference {da:.4f}"


# --------------------------------------------------------------------- valid inputs
def unit_floats() -> st.SearchStrategy[float]:
    """Floats in [0, 1] on a grid exact in float16 (well conditioned for percentiles)."""
    return st.integers(0, 1024).map(lambda k: k / 1024)


def data_floats() -> st.SearchStrategy[float]:
    """'Scientific' floats beyond [0, 1] (-1000..1000 in halves, exact in float16)."""
    return st.integers(-2000, 2000).map(lambda k: k / 2)


#: family -> (dtypes, elements, channel layouts (None: (H, W)), takes every range mode)
FAMILIES = {
    "uint8": ([np.uint8], None, [None, 1, 3, 4], True),
    "uint16": ([np.uint16], None, [None, 1, 3, 4], True),
    "unit": ([np.float16, np.float32, np.float64], unit_floats(), [None, 1, 3, 4], True),
    "scientific": ([np.float32, np.float64, np.float16], data_floats(), [None, 1, 3], True),
    "integer": ([np.int16, np.int32, np.int64, np.int8, np.uint32],
                st.integers(-128, 127), [None, 1, 3], False),  # needs intensity_range=(lo, hi)
}
HAS_TORCH = importlib.util.find_spec("torch") is not None


def explicit_ranges() -> st.SearchStrategy[tuple[float, float]]:
    return st.tuples(st.integers(-3000, 3000).map(lambda k: k / 2),
                     st.sampled_from([0.5, 1.0, 7.0, 255.0, 1000.0, 65535.0])).map(
        lambda lo_span: (lo_span[0], lo_span[0] + lo_span[1]))


@st.composite
def array_of(draw, family: str, dtype) -> np.ndarray:
    _, elements, layouts, _ = FAMILIES[family]
    h, w = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    c = draw(st.sampled_from(layouts))
    shape = (h, w) if c is None else (h, w, c)
    if dtype == np.uint32:
        elements = st.integers(0, 255)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def as_container(draw, arr: np.ndarray) -> Any:
    """The same image as numpy, PIL or torch (where that container holds it)."""
    kinds = ["numpy"]
    gray, c = arr.ndim == 2, (arr.shape[-1] if arr.ndim == 3 else None)
    if (arr.dtype == np.uint8 and c in (None, 3, 4)) or (gray and arr.dtype in
                                                         (np.uint16, np.float32)):
        kinds.append("pil")
    if HAS_TORCH and arr.dtype in (np.uint8, np.float32, np.float64):
        kinds.append("torch")
    kind = draw(st.sampled_from(kinds))
    if kind == "pil":
        from PIL import Image

        return Image.fromarray(arr)  # L, I;16, F, RGB or RGBA
    if kind == "torch":
        import torch

        channels_first = arr.ndim == 3 and arr.shape[1] not in (1, 3, 4) and draw(st.booleans())
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, 0) if channels_first
                                                     else arr))
    return arr


@dataclass
class Call:
    images: list  # as passed (numpy, PIL, torch)
    arrays: list  # the same as numpy, for the oracle
    intensity_range: Any
    output_dtype: str
    entry: str  # "method", "list", "batch" or "function"


@st.composite
def valid_calls(draw, b: Budget) -> Call:
    family = draw(st.sampled_from(list(FAMILIES)))
    dtypes, _, _, any_range = FAMILIES[family]
    dtype = draw(st.sampled_from(dtypes))
    modes = st.sampled_from([None, "dtype", "percentile"]) if any_range else st.nothing()
    intensity_range = draw(modes | explicit_ranges())
    entries = ["method", "list", "batch"] + (["function"] if b.cheap else [])
    entry = draw(st.sampled_from(entries))
    arrays = draw(st.lists(array_of(family, dtype), min_size=1, max_size=2 if entry in (
        "list", "batch") else 1))
    images = [draw(as_container(a)) for a in arrays]
    return Call(images, arrays, intensity_range, draw(st.sampled_from(b.output_dtypes)), entry)


def run_call(name: str, call: Call, **extra) -> list:
    """Make the call through its entry point; one result per image."""
    if call.entry == "function":
        options = dict(budget(name).options, output_dtype=call.output_dtype,
                       intensity_range=call.intensity_range)
        return [colorplug.colorize(call.images[0], name, device="cpu", **extra, **options)]
    c = backend(name, call.output_dtype)
    c.intensity_range = call.intensity_range
    try:
        if call.entry == "method":
            return [c.colorize(call.images[0], **extra)]
        if call.entry == "list":
            out = c.colorize(list(call.images), **extra)
        else:
            out = c.colorize_batch(call.images, **extra)
        assert isinstance(out, list) and len(out) == len(call.images), \
            f"{call.entry}: {len(call.images)} images gave {type(out).__name__} {out!r:.80}"
        return out
    finally:
        c.intensity_range = None


def test_api_valid_inputs_give_a_correct_image(name):
    b = budget(name)
    info = backend(name).info

    @settings(max_examples=b.valid, **SETTINGS)
    @given(call=valid_calls(b), with_reference=st.booleans())
    @example(call=Call([GRADIENT], [GRADIENT], None, "uint8", "method"), with_reference=False)
    def run(call, with_reference):
        extra = extra_inputs(info)
        if info.accepts_reference and (with_reference or b.always_reference):
            extra["reference"] = REFERENCE
        outs = run_call(name, call, **extra)  # any exception, BackendError included, fails
        for i, (out, arr) in enumerate(zip(outs, call.arrays)):
            check_image(out, arr, call.intensity_range, call.output_dtype,
                        f"{call.entry} image {i} ({arr.dtype} {arr.shape}, "
                        f"{type(call.images[i]).__module__.split('.')[0]}, "
                        f"intensity_range={call.intensity_range!r})")

    run()


# ------------------------------------------------------------------- invalid inputs
@dataclass
class Bad:
    """An invalid call and the error it must raise."""

    problem: str
    image: Any
    intensity_range: Any
    error: type
    match: str
    batch_index: int | None = None  # the bad image's index in a batch of valid ones


def valid_gray() -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)))


@st.composite
def bad_calls(draw) -> Bad:
    problem = draw(st.sampled_from(["nan", "empty", "two channels", "ndim", "dtype", "range",
                                    "type", "empty batch"]))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    good_ranges = st.sampled_from([None, "dtype", "percentile"]) | explicit_ranges()
    if problem == "nan":
        c = draw(st.sampled_from([None, 1, 3, 4]))
        arr = draw(hnp.arrays(draw(st.sampled_from([np.float16, np.float32, np.float64])),
                              (h, w) if c is None else (h, w, c), elements=unit_floats()))
        arr.flat[draw(st.integers(0, arr.size - 1))] = draw(st.sampled_from(
            [np.nan, np.inf, -np.inf]))
        bad = Bad(problem, arr, draw(good_ranges), InputError, r"NaN or infinite")
    elif problem == "empty":
        shape = draw(st.sampled_from([(0, w), (h, 0), (0, 0), (0, w, 3), (h, 0, 4), (h, w, 0)]))
        bad = Bad(problem, np.zeros(shape, np.uint8), None, InputError, r"empty")
    elif problem == "two channels":
        arr = np.zeros((h, w, 2), draw(st.sampled_from([np.uint8, np.uint16, np.float32])))
        bad = Bad(problem, arr, None, InputError, r"2 channels")
    elif problem == "ndim":
        shape = draw(st.sampled_from([(h,), (), (h, w, 5), (h, w, 6), (2, h, w, 3),
                                      (h, w, 3, 1)]))
        bad = Bad(problem, np.zeros(shape, np.uint8), None, InputError, r"ndim|shape")
    elif problem == "dtype":  # other integers without (lo, hi); bool and complex always
        dtype = draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint32,
                                      np.uint64, np.bool_, np.complex64]))
        ranges = (good_ranges if dtype in (np.bool_, np.complex64)
                  else st.sampled_from([None, "dtype", "percentile"]))
        arr = np.zeros((h, w) + draw(st.sampled_from([(), (3,)])), dtype)
        bad = Bad(problem, arr, draw(ranges), InputError, r"dtype")
    elif problem == "range":
        arr = draw(st.sampled_from([np.uint8, np.uint16, np.float32]).flatmap(
            lambda dt: hnp.arrays(dt, (h, w), elements=unit_floats() if dt == np.float32
                                  else None)))
        value = draw(st.sampled_from(["nonsense", "", "DTYPE", (np.nan, 1.0), (0.0, np.inf),
                                      (1.0, 0.0), (3.0, 3.0), ("a", 1.0), (0, 1, 2), 5, (1.0,)]))
        bad = Bad(problem, arr, value, InputError, r"intensity_range")
    elif problem == "type":
        obj = draw(st.sampled_from([None, "gray.png", b"\x89PNG", 3.5, {"image": 1}, {1, 2},
                                    object()]))
        bad = Bad(problem, obj, None, InputError, r"type|None")
    else:
        return Bad(problem, [], None, InputError, r"no images")
    if problem in ("nan", "empty", "two channels", "ndim", "dtype", "type") and draw(
            st.booleans()):  # in a batch of valid images: the message names which one
        bad.batch_index = draw(st.integers(0, 2))
    return bad


def test_api_invalid_inputs_raise_the_input_error_naming_the_problem(name):
    b = budget(name)

    nan = np.full((3, 4), 0.5, np.float32)
    nan[1, 2] = np.nan

    @settings(max_examples=b.invalid, **SETTINGS)
    @given(bad=bad_calls(), others=st.lists(valid_gray(), min_size=2, max_size=2))
    @example(bad=Bad("nan", nan, None, InputError, r"NaN or infinite"), others=[GRADIENT] * 2)
    def run(bad, others):
        c = backend(name)
        extra = extra_inputs(c.info)
        c.intensity_range = bad.intensity_range
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy on NaN data
                if bad.batch_index is not None:
                    images = list(others)
                    images.insert(bad.batch_index, bad.image)
                    out = c.colorize_batch(images, **extra)
                else:
                    out = c.colorize(bad.image, **extra)
        except InputError as exc:
            assert isinstance(exc, bad.error), \
                f"{bad.problem}: {type(exc).__name__}, expected {bad.error.__name__}: {exc}"
            assert re.search(bad.match, str(exc)), \
                f"{bad.problem}: the message does not name the problem: {exc}"
            if bad.batch_index is not None:
                assert f"image {bad.batch_index}" in str(exc), \
                    f"{bad.problem}: the message does not name the bad image: {exc}"
            return
        finally:
            c.intensity_range = None
        # a BackendError or any other exception has propagated: a failure
        raise AssertionError(f"{bad.problem}: an invalid input was accepted: "
                             f"{type(out).__name__} {getattr(out, 'shape', '')}")

    run()


def test_api_invalid_options_name_the_problem(name):
    with pytest.raises(InputError, match="output_dtype"):
        colorplug.get(name, device="cpu", output_dtype="int8", **budget(name).options)
    if backend(name).info.options is not None:  # declared: an unknown one is refused early
        with pytest.raises(UnknownOptionError, match="no_such_option"):
            colorplug.get(name, device="cpu", no_such_option=1)
    if backend(name).info.needs_reference:
        with pytest.raises(MissingReferenceError):
            backend(name).colorize(np.zeros((4, 4), np.uint8))


# ----------------------------------------------------------------------- references
@st.composite
def colour_references(draw) -> np.ndarray:
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32]))
    ref = draw(hnp.arrays(dtype, (h, w, draw(st.sampled_from([3, 4]))),
                          elements=unit_floats() if dtype == np.float32 else None))
    ref[0, 0, :3] = (TOP.get(np.dtype(dtype), 1.0), 0, 0)  # a red pixel: it has colour
    return ref


@st.composite
def bad_references(draw) -> tuple[Any, type, str]:
    problem = draw(st.sampled_from(["gray 2-D", "gray RGB", "nan", "dtype", "two channels",
                                    "empty", "type"]))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if problem == "gray 2-D":
        return np.full((h, w), 128, np.uint8), GrayscaleReferenceError, r"grayscale|colour"
    if problem == "gray RGB":
        v = draw(hnp.arrays(np.uint8, (h, w, 1)))
        return np.repeat(v, 3, -1), GrayscaleReferenceError, r"grayscale|colour"
    if problem == "nan":
        ref = np.full((h, w, 3), 0.5, np.float32)
        ref[0, 0, 0] = np.nan
        return ref, InputError, r"NaN or infinite"
    if problem == "dtype":
        return np.zeros((h, w, 3), draw(st.sampled_from([np.int16, np.int64, np.bool_]))), \
            InputError, r"reference dtype"
    if problem == "two channels":
        return np.zeros((h, w, 2), np.uint8), InputError, r"2 channels"
    if problem == "empty":
        return np.zeros((0, w, 3), np.uint8), InputError, r"empty reference"
    return "photo.jpg", InputError, r"reference type"


def test_api_references_are_used_or_ignored_as_documented(name):
    c = backend(name)
    gray = np.random.default_rng(0).integers(0, 256, (10, 13), dtype=np.uint8)
    examples = max(3, budget(name).valid // 2)
    if not c.info.accepts_reference:  # ignored, with a warning (docs/api.md)
        with pytest.warns(IgnoredInputWarning):
            out = c.colorize(gray, reference=REFERENCE, hints=extra_inputs(c.info)["hints"])
        check_image(out, gray, None, "uint8", "image with an ignored reference")
        return

    @settings(max_examples=examples, **SETTINGS)
    @given(reference=colour_references())
    def valid(reference):
        check_image(c.colorize(gray, reference=reference), gray, None, "uint8",
                    f"reference {reference.dtype} {reference.shape}")

    @settings(max_examples=examples * 2, **SETTINGS)
    @given(bad=bad_references())
    def invalid(bad):
        reference, error, match = bad
        with pytest.raises(InputError) as caught:
            c.colorize(gray, reference=reference)
        assert isinstance(caught.value, error), \
            f"{type(caught.value).__name__}, expected {error.__name__}: {caught.value}"
        assert re.search(match, str(caught.value)), f"the message does not name it: {caught.value}"

    valid()
    invalid()


# ------------------------------------------------------------------------------ CLI
BACKEND_FAILURE = re.compile(r"backend '[^']*' \([^)]*\) (failed|returned|could not be built)")


def check_no_backend_failure(err: str, argv: list) -> None:
    assert "Traceback" not in err, f"{argv}: a traceback:\n{err}"
    m = BACKEND_FAILURE.search(err)
    assert m is None, f"{argv}: the backend failed:\n{err}"


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str]:
    """``colorplug ARGV`` in `cwd` -> (exit code, stderr)."""
    from colorplug.cli import main

    err = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: usage errors exit 2
                code = exc.code
    finally:
        os.chdir(old)
    return code, err.getvalue()


#: valid input files: (suffix, family, channel layouts) written by PIL or tifffile
FILE_KINDS = [("png", np.uint8, [None, 3, 4]), ("png", np.uint16, [None]),
              ("jpg", np.uint8, [None, 3]), ("bmp", np.uint8, [None, 3]),
              ("tif", np.uint8, [None, 3]), ("tif", np.uint16, [None, 3]),
              ("tif", np.float32, [None])]


@st.composite
def valid_files(draw) -> tuple[str, np.ndarray]:
    suffix, dtype, layouts = draw(st.sampled_from(FILE_KINDS))
    h, w, c = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.sampled_from(layouts))
    arr = draw(hnp.arrays(dtype, (h, w) if c is None else (h, w, c),
                          elements=unit_floats() if dtype == np.float32 else None))
    return suffix, arr


def write_file(path: Path, arr: np.ndarray) -> None:
    if path.suffix == ".tif":
        import tifffile

        tifffile.imwrite(path, arr, photometric="rgb" if arr.ndim == 3 else "minisblack")
    else:
        from PIL import Image

        Image.fromarray(arr).save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))


@st.composite
def cli_options(draw) -> tuple[str, str, str | None]:
    """(output format, --output-dtype, --intensity-range or None): a valid combination."""
    fmt = draw(st.sampled_from(["png", "tif", "jpg"]))
    dtype = draw(st.sampled_from({"png": ["uint8", "uint16"], "jpg": ["uint8"],
                                  "tif": ["uint8", "uint16", "float32"]}[fmt]))
    rng = draw(st.none() | st.sampled_from(["dtype", "percentile"])
               | explicit_ranges().map(lambda r: f"{r[0]},{r[1]}"))
    return fmt, dtype, rng


def parse_range(text: str | None) -> Any:
    if text is None or text in ("dtype", "percentile"):
        return text
    return tuple(float(v) for v in text.split(","))


def cli_argv(host: str, sources: list[str], options: tuple, folder: Path) -> list[str]:
    fmt, dtype, rng = options
    argv = ["colorize", *sources, "-o", str(folder / "out"), "-b", host, "--output-format", fmt,
            "--output-dtype", dtype, "-q"]
    if rng is not None:
        argv.append(f"--intensity-range={rng}")  # "=": a range may start with "-"
    info = backend(host).info
    if info.needs_reference:
        write_file(folder / "reference.png", REFERENCE)
        argv += ["--reference", str(folder / "reference.png")]
    return argv


def check_cli_output(folder: Path, stem: str, source: Path, options: tuple, what: str) -> None:
    from colorplug.image import read_image

    fmt, dtype, rng = options
    target = folder / "out" / f"{stem}.{fmt}"
    assert target.is_file(), f"{what}: no output {target.name}"
    out = read_image(target)
    check_image(out, read_image(source), parse_range(rng), dtype, what, lossy=fmt == "jpg",
                keeps_alpha=fmt != "jpg")


def skip_hosts_needing_hints(host: str) -> None:
    if backend(host).info.needs_hints:
        pytest.skip(f"{host} needs hints: the CLI and bridge tests give none")


def test_cli_valid_files_give_exit_0_and_correct_outputs(host, tmp_path):
    skip_hosts_needing_hints(host)
    counter = itertools.count()

    @settings(max_examples=budget(host).cli, **SETTINGS)
    @given(files=st.lists(valid_files(), min_size=1, max_size=3), options=cli_options(),
           as_folder=st.booleans())
    @example(files=[("png", GRADIENT)], options=("png", "uint8", None), as_folder=False)
    def run(files, options, as_folder):
        folder = tmp_path / f"run{next(counter)}"
        (folder / "in").mkdir(parents=True)
        sources = []
        for i, (suffix, arr) in enumerate(files):
            write_file(folder / "in" / f"img{i}.{suffix}", arr)
            sources.append(folder / "in" / f"img{i}.{suffix}")
        argv = cli_argv(host, [str(folder / "in")] if as_folder else list(map(str, sources)),
                        options, folder)
        code, err = run_cli(argv, folder)
        check_no_backend_failure(err, argv)
        assert code == 0, f"{argv}: exit {code} for valid files:\n{err}"
        for i, source in enumerate(sources):
            check_cli_output(folder, f"img{i}", source, options, f"{argv} -> img{i}")

    run()


CORRUPT = {  # name -> bytes (None: the file does not exist)
    "header-only.png": lambda png, jpg: png[:33],  # signature and IHDR, no pixels
    "garbage.png": lambda png, jpg: png[:8] + bytes(range(256)) * 2,
    "truncated.jpg": lambda png, jpg: jpg[:120],
    "empty.tif": lambda png, jpg: b"",
    "text.jpg": lambda png, jpg: b"not an image at all\n",
    "noise.bmp": lambda png, jpg: bytes(np.random.default_rng(0).integers(0, 256, 300,
                                                                          dtype=np.uint8)),
    "missing.png": None,
}


def encoded_samples() -> tuple[bytes, bytes]:
    from PIL import Image

    png, jpg = io.BytesIO(), io.BytesIO()
    photo = make_photo(2, (24, 32))
    Image.fromarray(photo).save(png, format="PNG")
    Image.fromarray(photo).save(jpg, format="JPEG")
    return png.getvalue(), jpg.getvalue()


def test_cli_corrupt_files_fail_alone_with_a_message_naming_them(host, tmp_path):
    skip_hosts_needing_hints(host)
    png, jpg = encoded_samples()
    counter = itertools.count()

    @settings(max_examples=budget(host).cli, **SETTINGS)
    @given(good=st.lists(valid_files(), max_size=2),
           bad=st.lists(st.sampled_from(sorted(CORRUPT)), min_size=1, max_size=3, unique=True),
           options=cli_options(), as_folder=st.booleans())
    @example(good=[("png", GRADIENT)], bad=["text.jpg"], options=("png", "uint8", None),
             as_folder=False)
    def run(good, bad, options, as_folder):
        if all(CORRUPT[b] is None for b in bad) and not good:
            bad = bad + ["empty.tif"]  # something must exist, or it is a usage error (2)
        folder = tmp_path / f"run{next(counter)}"
        (folder / "in").mkdir(parents=True)
        sources = []
        for i, (suffix, arr) in enumerate(good):
            write_file(folder / "in" / f"img{i}.{suffix}", arr)
            sources.append(folder / "in" / f"img{i}.{suffix}")
        for b in bad:
            if CORRUPT[b] is not None:
                (folder / "in" / b).write_bytes(CORRUPT[b](png, jpg))
        listed = [str(folder / "in")] if as_folder else list(map(str, sources)) + [
            str(folder / "in" / b) for b in bad if CORRUPT[b] is not None]
        listed += [str(folder / "in" / b) for b in bad if CORRUPT[b] is None]
        argv = cli_argv(host, listed, options, folder)
        code, err = run_cli(argv, folder)
        check_no_backend_failure(err, argv)
        assert code == 1, f"{argv}: exit {code} with corrupt files; expected 1:\n{err}"
        failed = dict(re.findall(r"^colorplug: failed: (.+?): (.+)$", err, re.MULTILINE))
        for b in bad:
            why = failed.pop(str(folder / "in" / b), None)
            assert why is not None, f"{argv}: no 'failed:' line names {b}:\n{err}"
            assert re.search(r"cannot read|no such file|corrupt|not an image", why), \
                f"{argv}: the message for {b} does not say what is wrong: {why}"
            assert not list((folder / "out").glob(Path(b).stem + ".*")), f"output for {b}"
        assert not failed, f"{argv}: valid files failed: {failed}"
        for i, source in enumerate(sources):
            check_cli_output(folder, f"img{i}", source, options, f"{argv} -> img{i}")
        assert not list(folder.rglob("*.part")), "temporaries left behind"

    run()


FLAGS = ["-o", "--output", "-b", "--backend", "--reference", "--hints", "--device",
         "--output-dtype", "--output-format", "--intensity-range", "--overwrite",
         "--skip-existing", "--allow-huge-images", "-q", "--sample"]
VALUES = ["gray", "gray?x=1", "fusion?working_size=nan", "nope", "cpu", "cuda:9", "uint16",
          "float32", "int8", "tif", "png", "jpg", "0,1", "1,0", "nan,1", "percentile", "",
          "-", "a.png", "out", "out.png", "out.tif", "out.xyz", "in", "in/a.png", "in/b.jpg",
          "in/missing.png"]


def test_cli_any_arguments_give_an_exit_code_never_a_traceback(host, tmp_path):
    """Arguments at random: exit 0, 1 (per-file failures: only the missing file) or 2 (a
    usage error); never a traceback nor a backend failure; the valid files never fail."""
    from PIL import Image

    skip_hosts_needing_hints(host)
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((9, 11), 90, np.uint8)).save(tmp_path / "in" / "a.png")
    Image.fromarray(make_photo(1, (12, 10))).save(tmp_path / "in" / "b.jpg")
    inputs = st.lists(st.sampled_from(["in", "in/a.png", "in/b.jpg", "in/missing.png", "-"]),
                      min_size=0, max_size=3)
    outputs = st.sampled_from(["out", "out.png", "out.tif", "out.xyz", "in/a.png", "o/x.jpg"])
    extras = st.lists(st.sampled_from(FLAGS + VALUES) | st.text(max_size=6), max_size=5)
    codes = []

    @settings(max_examples=3 * budget(host).cli, **SETTINGS)
    @given(srcs=inputs, out=outputs, extra=extras, backend=st.sampled_from([host, "nope",
                                                                           f"{host}?x=1"]))
    @example(srcs=["in/a.png", "in/missing.png"], out="o1", extra=[], backend=host)  # exit 1
    @example(srcs=["in"], out="o2", extra=["--output-format", "tif"], backend=host)  # exit 0
    def run(srcs, out, extra, backend):
        argv = ["colorize", *srcs, "-o", out, "-b", backend, *extra]
        code, err = run_cli(argv, tmp_path)
        check_no_backend_failure(err, argv)
        assert code in (0, 1, 2), argv
        codes.append(code)
        for path, why in re.findall(r"^colorplug: failed: (.+?): (.+)$", err, re.MULTILINE):
            assert Path(path).name in ("missing.png", "-"), \
                f"{argv}: a valid file failed: {path}: {why}"
        assert (tmp_path / "in" / "b.jpg").exists()  # inputs are never removed
        assert not list(tmp_path.rglob("*.part"))  # no temporaries left behind

    run()
    assert {0, 1, 2} <= set(codes), codes  # success, per-file failure and usage errors


# ------------------------------------------------------------------- GIMP bridge requests
def bridge_request(host: str, call: Path, width: int, height: int, channels: int,
                   depth: int) -> dict:
    req = {"command": "colorize", "backend": host, "device": "cpu", "dir": str(call),
           "input": {"file": "in.raw", "width": width, "height": height, "channels": channels,
                     "depth": depth},
           "reference": None, "hints": None, "output": {"file": "out.raw"}}
    if backend(host).info.needs_reference:
        (call / "ref.raw").write_bytes(REFERENCE.tobytes())
        req["reference"] = {"file": "ref.raw", "width": REFERENCE.shape[1],
                            "height": REFERENCE.shape[0], "channels": 3, "depth": 8}
    return req


def ask(req: Any, models) -> tuple[str, Any]:
    """One request through the bridge -> ("result" | "error", decoded payload)."""
    from colorplug import gimp_bridge

    said = []
    gimp_bridge.handle(req, models, lambda kind, text: said.append((kind, text)))
    final = [s for s in said if s[0] in ("result", "error")]
    assert len(final) == 1, said
    return final[0][0], json.loads(final[0][1])


def check_bridge_output(call: Path, result: dict, pixels: np.ndarray, depth: int,
                        what: str, output: str = "out.raw") -> None:
    """The output pixel file of a request whose input was `pixels` (H, W, C)."""
    h, w, c = pixels.shape
    channels = 4 if c in (2, 4) else 3
    assert (result["width"], result["height"], result["channels"], result["depth"]) == \
        (w, h, channels, depth), f"{what}: result {result}"
    dtype = np.dtype("<u2") if depth == 16 else np.dtype(np.uint8)
    data = (call / output).read_bytes()
    assert len(data) == h * w * channels * dtype.itemsize, \
        f"{what}: the output file holds {len(data)} bytes for {w}x{h}x{channels} at {depth} bit"
    out = np.frombuffer(data, dtype).reshape(h, w, channels).astype(dtype.newbyteorder("="))
    if c == 2:  # gray + alpha is colorized as RGBA
        pixels = np.concatenate([np.repeat(pixels[..., :1], 3, -1), pixels[..., 1:]], -1)
    check_image(out, pixels[..., 0] if c == 1 else pixels, "dtype",
                "uint16" if depth == 16 else "uint8", what)


def test_bridge_valid_requests_give_a_correct_result(host, tmp_path):
    from colorplug import gimp_bridge

    skip_hosts_needing_hints(host)
    models = gimp_bridge.Models()
    counter = itertools.count()

    @settings(max_examples=budget(host).bridge, **SETTINGS)
    @given(depth=st.sampled_from([8, 16]), data=st.data())
    @example(depth=8, data=GRADIENT[..., None])
    def run(depth, data):
        if isinstance(data, np.ndarray):  # the explicit example
            pixels = data
        else:
            shape = data.draw(st.tuples(st.integers(1, 20), st.integers(1, 20),
                                        st.integers(1, 4)))
            pixels = data.draw(hnp.arrays(np.uint16 if depth == 16 else np.uint8, shape))
        (h, w, channels), dtype = pixels.shape, pixels.dtype
        call = tmp_path / f"call{next(counter)}"
        call.mkdir(mode=0o700)
        (call / "in.raw").write_bytes(pixels.astype(np.dtype(dtype).newbyteorder("<")).tobytes())
        req = bridge_request(host, call, w, h, channels, depth)
        kind, payload = ask(req, models)
        assert kind == "result", f"{req['input']}: a valid request failed: {payload}"
        check_bridge_output(call, payload, pixels, depth, f"bridge {req['input']}")

    run()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)
FIELDS = ["command", "backend", "device", "dir", "input", "input.file", "input.width",
          "input.height", "input.channels", "input.depth", "reference", "hints", "output",
          "output.file", "options", "input.offset"]


def test_bridge_any_request_gives_a_result_or_a_named_error(host, tmp_path):
    """Requests mangled at random: a correct result, or an error of a named kind; never
    "internal" (a raw Python exception) nor "backend" (the backend failed)."""
    from colorplug import gimp_bridge

    skip_hosts_needing_hints(host)
    call = tmp_path / "call"
    call.mkdir(mode=0o700)
    pixels = np.arange(240, dtype=np.uint8).reshape(20, 12, 1)
    (call / "in.raw").write_bytes(pixels.tobytes())
    good = bridge_request(host, call, 12, 20, 1, 8)
    models = gimp_bridge.Models()
    kinds = []

    @settings(max_examples=3 * budget(host).bridge, **SETTINGS)
    @given(changes=st.lists(st.tuples(st.sampled_from(FIELDS), json_values | st.just(KeyError)),
                            max_size=3),
           whole=st.none() | json_values)
    @example(changes=[], whole=None)  # the valid request itself
    def run(changes, whole):
        req = json.loads(json.dumps(good))
        for path, value in changes:
            obj = req
            *parents, last = path.split(".")
            for key in parents:
                obj = obj.get(key) if isinstance(obj, dict) else None
            if not isinstance(obj, dict):
                continue
            if value is KeyError:
                obj.pop(last, None)
            else:
                obj[last] = value
        if whole is not None and not changes:
            req = whole
        kind, payload = ask(req, models)
        if kind == "error":
            assert payload["kind"] not in ("internal", "backend"), (req, payload)
            kinds.append(payload["kind"])
        elif req.get("command") == "colorize":  # (not "ping" nor "list")
            output = req["output"]["file"]
            check_bridge_output(call, payload, pixels, 8, f"bridge {req}", output)
            (call / output).unlink()
            kinds.append("ok")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["call"]  # nothing written outside
        if not changes and whole is None:
            assert kind == "result", f"the valid request failed: {payload}"

    run()
    assert "ok" in kinds and "bad_request" in kinds, kinds
