"""Property-based tests (hypothesis) of the public entry points: the API of every built-in
backend and the CLI's arguments. Whatever is passed, the result is either a valid image of
the input's size that keeps its lightness, or a ColorplugError; never another exception.
Budget: well under a minute in all (examples per backend scale with its speed)."""
from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import colorplug
from colorplug import color

from .conftest import make_photo

SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@functools.lru_cache(maxsize=None)
def backend(name: str):
    # exemplar at its smallest working size: the same code paths, a tenth of the time
    options = {"working_size": 64} if name == "exemplar" else {}
    return colorplug.get(name, device="cpu", **options)


dtypes = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.float16, np.int32,
                          np.int64, np.bool_, np.int8])
shapes = st.tuples(st.integers(1, 24), st.integers(1, 24),
                   st.sampled_from([None, 1, 2, 3, 4, 5]))


@st.composite
def images(draw):
    h, w, c = draw(shapes)
    dtype = draw(dtypes)
    shape = (h, w) if c is None else (h, w, c)
    if np.dtype(dtype).kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements))


ranges = st.one_of(st.none(), st.sampled_from(["dtype", "percentile", "nonsense"]),
                   st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True)))


def check_result(out, image):
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert out.shape[:2] == image.shape[:2] and out.shape[-1] in (3, 4)


@pytest.mark.parametrize("name, examples", [("gray", 100), ("autoencoder", 25), ("fusion", 25),
                                            ("cgan", 15), ("exemplar", 6)])
def test_api_any_input_gives_an_image_or_a_colorplug_error(name, examples):
    c = backend(name)
    reference = make_photo(3, (40, 30)) if c.info.needs_reference else None

    @settings(max_examples=examples, **SETTINGS)
    @given(image=images(), intensity_range=ranges)
    def run(image, intensity_range):
        c.intensity_range = intensity_range
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = c.colorize(image, reference=reference)
        except colorplug.ColorplugError:
            return
        finally:
            c.intensity_range = None
        check_result(out, image)
        if image.ndim == 2 and image.dtype == np.uint8 and intensity_range in (None, "dtype"):
            dl = color.lightness_from_rgb(out / 255.0) - color.lightness_from_gray(image / 255.0)
            assert np.abs(dl).max() < 1.5  # lightness kept (8-bit rounding of the output)

    run()


@pytest.mark.parametrize("name", ["exemplar", "fusion"])
def test_api_any_reference_gives_an_image_or_a_colorplug_error(name):
    c = backend(name)
    gray = np.random.default_rng(0).integers(0, 256, (20, 17), dtype=np.uint8)

    colour = st.tuples(st.integers(1, 30), st.integers(1, 30), st.sampled_from([3, 4])).flatmap(
        lambda shape: hnp.arrays(np.uint8, shape))

    @settings(max_examples=6, **SETTINGS)
    @given(reference=colour | images())
    def run(reference):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = c.colorize(gray, reference=reference)
        except colorplug.ColorplugError:
            return
        check_result(out, gray)

    run()


# ------------------------------------------------------------------------------ CLI
FLAGS = ["-o", "--output", "-b", "--backend", "--reference", "--hints", "--device",
         "--output-dtype", "--output-format", "--intensity-range", "--overwrite",
         "--skip-existing", "--allow-huge-images", "-q", "--sample"]
VALUES = ["gray", "gray?x=1", "fusion?working_size=nan", "nope", "cpu", "cuda:9", "uint16",
          "float32", "int8", "tif", "png", "jpg", "0,1", "1,0", "nan,1", "percentile", "",
          "-", "a.png", "out", "out.png", "out.tif", "out.xyz", "in", "in/a.png", "in/b.jpg",
          "in/missing.png"]


def test_cli_any_arguments_give_an_exit_code_never_a_traceback(tmp_path):
    import os

    from PIL import Image

    from colorplug.cli import main

    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((9, 11), 90, np.uint8)).save(tmp_path / "in" / "a.png")
    Image.fromarray(make_photo(1, (12, 10))).save(tmp_path / "in" / "b.jpg")
    inputs = st.lists(st.sampled_from(["in", "in/a.png", "in/b.jpg", "in/missing.png", "-"]),
                      min_size=0, max_size=3)
    outputs = st.sampled_from(["out", "out.png", "out.tif", "out.xyz", "in/a.png", "o/x.jpg"])
    extras = st.lists(st.sampled_from(FLAGS + VALUES) | st.text(max_size=6), max_size=5)
    codes = []

    @settings(max_examples=150, **SETTINGS)
    @given(srcs=inputs, out=outputs, extra=extras, backend=st.sampled_from(["gray", "nope",
                                                                           "gray?x=1"]))
    @example(srcs=["in/a.png", "in/missing.png"], out="o1", extra=[], backend="gray")  # exit 1
    @example(srcs=["in"], out="o2", extra=["--output-format", "tif"], backend="gray")  # exit 0
    def run(srcs, out, extra, backend):
        argv = ["colorize", *srcs, "-o", out, "-b", backend, *extra]
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse: usage errors exit 2
                code = exc.code
        finally:
            os.chdir(cwd)
        assert code in (0, 1, 2), argv
        codes.append(code)
        assert (tmp_path / "in" / "b.jpg").exists()  # inputs are never removed
        assert not list(tmp_path.rglob("*.part"))  # no temporaries left behind

    run()
    assert {0, 1, 2} <= set(codes)  # the runs reached success, per-file failure and usage errors


# ------------------------------------------------------------------- GIMP bridge requests
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)
FIELDS = ["command", "backend", "device", "dir", "input", "input.file", "input.width",
          "input.height", "input.channels", "input.depth", "reference", "hints", "output",
          "output.file", "options", "input.offset"]


def test_bridge_any_request_gives_a_result_or_a_named_error(tmp_path):
    import json

    from colorplug import gimp_bridge

    call = tmp_path / "call"
    call.mkdir(mode=0o700)
    (call / "in.raw").write_bytes(np.arange(240, dtype=np.uint8).tobytes())
    good = {"command": "colorize", "backend": "gray", "device": "cpu", "dir": str(call),
            "input": {"file": "in.raw", "width": 12, "height": 20, "channels": 1, "depth": 8},
            "reference": None, "hints": None, "output": {"file": "out.raw"}}
    models = gimp_bridge.Models()
    kinds = []

    @settings(max_examples=150, **SETTINGS)
    @given(changes=st.lists(st.tuples(st.sampled_from(FIELDS), json_values | st.just(KeyError)),
                            max_size=3),
           whole=st.none() | json_values)
    def run(changes, whole):
        req = json.loads(json.dumps(good))
        for path, value in changes:
            obj, *_ = [req]
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
        said = []
        gimp_bridge.handle(req, models, lambda kind, text: said.append((kind, text)))
        final = [s for s in said if s[0] in ("result", "error")]
        assert len(final) == 1, said
        if final[0][0] == "error":
            err = json.loads(final[0][1])
            assert err["kind"] != "internal", err  # never a raw Python exception
            kinds.append(err["kind"])
        else:
            kinds.append("ok")
        (call / "out.raw").unlink(missing_ok=True)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["call"]  # nothing written outside

    run()
    assert "ok" in kinds and "bad_request" in kinds
