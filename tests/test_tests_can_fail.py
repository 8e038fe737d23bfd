"""The tests of tests/test_properties.py can fail: installed as a real plugin distribution
(dist-info + entry point, as after ``pip install``), a deliberately broken backend is
reported by every property test it should fail, each naming the problem, while the same run
against the real `gray` backend passes. Each run is a pytest subprocess pointed at one
backend with ``--property-backend`` (see tests/conftest.py)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow  # a pytest subprocess per backend: pytest -m slow

BROKEN = '''
import numpy as np
import colorplug
from colorplug.checked import input_hw
from colorplug.pipeline import ChromaColorizer


def info(name):
    return colorplug.BackendInfo(name=name, description="test: a broken backend", options={})


class Crash(ChromaColorizer):
    """gray with a model that crashes: IndexError on every call (inputs are still checked)."""
    info = info("broken-crash")

    def predict_chroma(self, lightness, *, reference, hints):
        raise IndexError("index 2 is out of bounds for axis 0 with size 2")


class Garbage:
    """Not built on ChromaColorizer: returns `make(h, w)` whatever it is given."""

    def __init__(self, name, make, **options):
        self.info = info(name)
        self.make = make
        self.intensity_range = options.get("intensity_range")
        self.output_dtype = options.get("output_dtype", "uint8")

    def colorize(self, image, *, reference=None, hints=None):
        if isinstance(image, (list, tuple)):
            return self.colorize_batch(image)
        h, w = input_hw(image) or (1, 1)
        return self.make(h, w)

    def colorize_batch(self, images, *, reference=None, hints=None):
        return [self.colorize(im) for im in images]


GARBAGE = {
    # one pixel too wide
    "broken-shape": lambda h, w: np.zeros((h, w + 1, 3), np.uint8),
    # 16-bit whatever output_dtype was asked for (a dtype CheckedColorizer lets through)
    "broken-dtype": lambda h, w: np.full((h, w, 3), 30000, np.uint16),
    # float32 NaN
    "broken-nan": lambda h, w: np.full((h, w, 3), np.nan, np.float32),
    # a valid image of the right size, in one colour: the input's lightness is ignored
    "broken-constant": lambda h, w: np.broadcast_to(np.array([200, 40, 40], np.uint8),
                                                    (h, w, 3)).copy(),
}


@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("broken-crash", lambda weights=None, device="auto", **o: Crash(**o), Crash.info)
    for name, make in GARBAGE.items():
        register(name, lambda weights=None, device="auto", _n=name, _m=make, **o:
                 Garbage(_n, _m, **o), info(name))
'''

VALID_API = "test_api_valid_inputs_give_a_correct_image"
INVALID_API = "test_api_invalid_inputs_raise_the_input_error_naming_the_problem"
CLI_VALID = "test_cli_valid_files_give_exit_0_and_correct_outputs"
CLI_CORRUPT = "test_cli_corrupt_files_fail_alone_with_a_message_naming_them"
CLI_FUZZ = "test_cli_any_arguments_give_an_exit_code_never_a_traceback"
BRIDGE_VALID = "test_bridge_valid_requests_give_a_correct_result"
BRIDGE_FUZZ = "test_bridge_any_request_gives_a_result_or_a_named_error"

# (CheckedColorizer's words, or the property test's own)
SIZE = r"a colorizer must keep the size|result shaped \(\d+, \d+, 3\); expected"
DTYPE = r"dtype uint16.*output_dtype uint8 was asked for"
NAN = r"NaN or infinite|outside the display range"
#: backend -> {property test that must fail: what its failure report must say (a regex)}
EXPECTED = {
    "broken-crash": {
        VALID_API: "IndexError: index 2 is out of bounds",
        CLI_VALID: "IndexError: index 2 is out of bounds",
        CLI_CORRUPT: "IndexError: index 2 is out of bounds",
        CLI_FUZZ: "IndexError: index 2 is out of bounds",
        BRIDGE_VALID: "IndexError: index 2 is out of bounds",
        BRIDGE_FUZZ: "IndexError: index 2 is out of bounds",
    },
    "broken-shape": {
        VALID_API: SIZE,
        INVALID_API: "BackendError|an invalid input was accepted",
        CLI_VALID: SIZE,
        BRIDGE_VALID: SIZE,
    },
    "broken-dtype": {
        VALID_API: DTYPE,
        INVALID_API: "BackendError|an invalid input was accepted",
        CLI_VALID: DTYPE,
        BRIDGE_VALID: DTYPE + "|holds .* bytes for",  # 16-bit pixels in an 8-bit file
    },
    "broken-nan": {
        VALID_API: NAN,
        INVALID_API: "BackendError|an invalid input was accepted",
        CLI_VALID: NAN,
        BRIDGE_VALID: NAN,
    },
    "broken-constant": {
        VALID_API: "the input's lightness was not kept",
        INVALID_API: "BackendError|an invalid input was accepted",
        CLI_VALID: "the input's lightness was not kept",
        BRIDGE_VALID: "the input's lightness was not kept",
    },
}

#: backend -> property tests that must still pass against it (the split is real: crashing
#: backends still refuse invalid inputs with the right InputError, before the model runs)
STILL_PASSING = {"broken-crash": [INVALID_API]}


@pytest.fixture
def broken_plugin(make_plugin):
    return make_plugin("colorplug-broken-backends", {"broken": "cp_test_broken_backends"},
                       {"cp_test_broken_backends": BROKEN})


def run_property_tests(backend: str, tmp_path, tests: list[str] | None = None
                       ) -> tuple[int, dict[str, str | None], str]:
    """tests/test_properties.py (only `tests`, if given) against `backend` in a subprocess
    -> (exit code, {test name: None if it passed, else its failure report}, output)."""
    report = tmp_path / f"{backend}.xml"
    select = ["-k", " or ".join(tests)] if tests else []
    # third-party pytest plugins off (napari's fixtures import napari: seconds per run)
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "tests" / "test_properties.py"),
         "--property-backend", backend, *select, "-q", "-p", "_hypothesis_pytestplugin",
         "-p", "no:cacheprovider", "-p", "no:warnings", "--rootdir", str(REPO),
         f"--junitxml={report}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert report.exists(), f"pytest wrote no report (exit {proc.returncode}):\n" + \
        (proc.stdout + proc.stderr)[-5000:]
    outcomes: dict[str, str | None] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        test, _, param = case.get("name").partition("[")
        assert param == f"{backend}]", case.get("name")
        problems = [e for e in case if e.tag in ("failure", "error", "skipped")]
        outcomes[test] = "\n".join(f"{e.tag}: {e.get('message')}\n{e.text or ''}"
                                   for e in problems) or None
    return proc.returncode, outcomes, proc.stdout + proc.stderr


@pytest.mark.parametrize("backend", sorted(EXPECTED))
def test_property_tests_fail_for_a_broken_backend(backend, broken_plugin, tmp_path):
    passing = STILL_PASSING.get(backend, [])
    code, outcomes, output = run_property_tests(backend, tmp_path,
                                                list(EXPECTED[backend]) + passing)
    assert code == 1, f"exit {code}; expected 1 (tests failed):\n{output[-3000:]}"
    for test in passing:
        assert outcomes.get(test, "did not run") is None, f"{test}: {outcomes.get(test)}"
    for test, says in EXPECTED[backend].items():
        assert test in outcomes, f"{test} did not run:\n{output[-3000:]}"
        report = outcomes[test]
        assert report is not None, f"{test} passed against {backend}:\n{output[-3000:]}"
        assert report.startswith("failure"), f"{test}: not a plain failure:\n{report[:3000]}"
        assert re.search(says, report), \
            f"{test}'s report does not say {says!r}:\n{report[:3000]}"


def test_property_tests_pass_for_gray(broken_plugin, tmp_path):
    """The same run, with the broken plugin installed, against the real `gray` backend."""
    code, outcomes, output = run_property_tests("gray", tmp_path)
    assert code == 0, output[-5000:]
    assert len(outcomes) >= 9 and not any(outcomes.values()), outcomes
