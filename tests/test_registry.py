import json
import subprocess
import sys

import numpy as np
import pytest

import colorplug
from colorplug.registry import Registry

from .conftest import PLUGIN_SOURCE


def test_builtins_are_plugins_and_listed():
    names = [i.name for i in colorplug.available()]
    assert {"autoencoder", "gray"} <= set(names)
    reg = colorplug.registry.default_registry()
    assert reg.entry("gray").distribution == "colorplug (built-in)"
    assert {p.plugin for p in reg.plugins} >= {"gray", "autoencoder"}


def test_unknown_backend_lists_available():
    with pytest.raises(colorplug.UnknownBackendError, match="unknown backend 'nope'.*autoencoder.*gray"):
        colorplug.get("nope")


def test_entry_point_plugin_appears_and_works(make_plugin):
    make_plugin("colorplug-redtint", {"redtint": "cp_test_red"},
                {"cp_test_red": PLUGIN_SOURCE.format(name="redtint", a=40.0)})
    names = [i.name for i in colorplug.available()]
    assert "redtint" in names
    entry = colorplug.registry.default_registry().entry("redtint")
    assert entry.distribution == "colorplug-redtint"
    out = colorplug.get("redtint").colorize(np.full((5, 6), 128, np.uint8))
    assert out[0, 0, 0] > out[0, 0, 1] + 30  # red


def test_broken_plugins_are_reported_and_others_load(make_plugin):
    make_plugin("colorplug-good", {"good": "cp_test_good"},
                {"cp_test_good": PLUGIN_SOURCE.format(name="good", a=10.0)})
    make_plugin("colorplug-badimport", {"badimport": "cp_test_badimport"},
                {"cp_test_badimport": "raise ImportError('needs libfoo')\n"})
    make_plugin("colorplug-badregister", {"badregister": "cp_test_badreg"},
                {"cp_test_badreg": """
import colorplug
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("half", lambda **o: None, colorplug.BackendInfo(name="half", description=""))
    raise RuntimeError("boom in register")
"""})
    with pytest.warns(RuntimeWarning) as caught:
        reg = Registry()
    msgs = " ".join(str(w.message) for w in caught)
    assert "badimport" in msgs and "needs libfoo" in msgs and "boom in register" in msgs
    assert "good" in reg.names() and "half" not in reg.names()
    failures = {f.plugin: f for f in reg.failures}
    assert failures["badimport"].distribution == "colorplug-badimport"
    assert failures["badimport"].stage == "import"
    assert failures["badregister"].stage == "register"


def test_strict_mode_raises(make_plugin, monkeypatch):
    make_plugin("colorplug-badimport", {"badimport": "cp_test_badimport2"},
                {"cp_test_badimport2": "raise ImportError('needs libfoo')\n"})
    monkeypatch.setenv("COLORPLUG_STRICT_PLUGINS", "1")
    with pytest.raises(colorplug.PluginError, match="badimport.*needs libfoo"):
        Registry()


def test_disable_plugins_by_name(make_plugin, monkeypatch):
    make_plugin("colorplug-good", {"good": "cp_test_good2"},
                {"cp_test_good2": PLUGIN_SOURCE.format(name="good", a=10.0)})
    monkeypatch.setenv("COLORPLUG_DISABLE_PLUGINS", "good, autoencoder")
    reg = Registry()
    assert "good" not in reg.names() and "autoencoder" not in reg.names()
    assert set(reg.disabled) == {"good", "autoencoder"}


def test_duplicate_backend_names_name_both_distributions(make_plugin):
    make_plugin("colorplug-one", {"one": "cp_test_one"},
                {"cp_test_one": PLUGIN_SOURCE.format(name="clash", a=1.0)})
    make_plugin("colorplug-two", {"two": "cp_test_two"},
                {"cp_test_two": PLUGIN_SOURCE.format(name="clash", a=2.0)})
    with pytest.warns(RuntimeWarning, match="clash"):
        reg = Registry()
    with pytest.raises(colorplug.BackendConflictError,
                       match="'clash'.*colorplug-(one|two).*colorplug-(one|two)"):
        reg.get("clash")
    assert "gray" in reg.names()


def test_register_validates_its_arguments():
    class Plugin:
        @colorplug.hookimpl
        def colorplug_register_colorizers(self, register):
            register("Bad Name!", lambda **o: None,
                     colorplug.BackendInfo(name="Bad Name!", description=""))

    reg = Registry(builtins=False, entry_points=False)
    with pytest.warns(RuntimeWarning, match="invalid backend name"):
        reg.add_plugin(Plugin(), "badname", "test")
    assert reg.names() == []


def test_import_and_available_do_not_import_torch():
    code = ("import sys, json, colorplug; names = [i.name for i in colorplug.available()]; "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'names': names}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["torch"] is False
    assert "autoencoder" in result["names"]
