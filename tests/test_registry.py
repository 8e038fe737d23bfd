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


def test_a_misspelled_hook_is_reported_and_the_other_plugins_load(make_plugin, capsys):
    # `colorplug_register_colorizer` lacks its s: pluggy would register it and never call it
    make_plugin("colorplug-typo", {"typo": "cp_test_typo"}, {"cp_test_typo": """
import colorplug
@colorplug.hookimpl
def colorplug_register_colorizer(register):
    register("typo", lambda **o: None, colorplug.BackendInfo(name="typo", description=""))
"""})
    make_plugin("colorplug-good", {"good": "cp_test_good_typo"},
                {"cp_test_good_typo": PLUGIN_SOURCE.format(name="good", a=10.0) + """
@colorplug.hookimpl(optionalhook=True)
def colorplug_register_something_newer(register):
    pass  # a hook of a later colorplug, marked optional: no error
"""})
    with pytest.warns(RuntimeWarning) as caught:
        names = [i.name for i in colorplug.available()]
    msgs = " ".join(str(w.message) for w in caught)
    assert "'typo'" in msgs and "colorplug-typo" in msgs
    assert "'colorplug_register_colorizer'" in msgs
    assert "did you mean 'colorplug_register_colorizers'" in msgs
    assert "colorplug_register_something_newer" not in msgs
    reg = colorplug.registry.default_registry()
    failure = {f.plugin: f for f in reg.failures}["typo"]
    assert failure.distribution == "colorplug-typo" and failure.stage == "register"
    assert "'colorplug_register_colorizer'" in failure.error
    assert [f.plugin for f in reg.failures] == ["typo"]
    assert "typo" not in {n for n, _ in reg.pm.list_name_plugin()}  # unregistered
    assert {"good", "gray", "fusion", "autoencoder", "cgan", "exemplar"} <= set(names)
    out = colorplug.get("gray").colorize(np.full((5, 6), 128, np.uint8))
    assert out.shape == (5, 6, 3)
    assert colorplug.get("good").colorize(np.full((5, 6), 128, np.uint8)).shape == (5, 6, 3)
    # `colorplug plugins` lists it under "failed:" with the hook's name
    from colorplug.cli import main

    capsys.readouterr()
    assert main(["plugins"]) == 1
    listing = capsys.readouterr().out
    failed = listing.split("failed:", 1)[1]
    assert "typo" in failed and "colorplug-typo" in failed
    assert "colorplug_register_colorizer" in failed


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


# ------------------------------------------------------------------ containment (hardening)
def test_a_plugin_calling_sys_exit_at_import_is_contained(make_plugin, capsys):
    make_plugin("colorplug-quitter", {"quitter": "cp_test_quitter"},
                {"cp_test_quitter": "import sys\nsys.exit(3)\n"})
    make_plugin("colorplug-good2", {"good2": "cp_test_good2"},
                {"cp_test_good2": PLUGIN_SOURCE.format(name="good2", a=10.0)})
    with pytest.warns(RuntimeWarning, match="quitter.*sys.exit"):
        names = [i.name for i in colorplug.available()]
    assert {"good2", "gray", "fusion"} <= set(names)
    failure = colorplug.registry.default_registry().failures[0]
    assert failure.plugin == "quitter" and failure.stage == "import"


def test_a_plugin_calling_sys_exit_while_registering_is_contained(make_plugin):
    src = ("import sys, colorplug\n@colorplug.hookimpl\n"
           "def colorplug_register_colorizers(register):\n    sys.exit('bye')\n")
    make_plugin("colorplug-quitter2", {"quitter2": "cp_test_quitter2"}, {"cp_test_quitter2": src})
    with pytest.warns(RuntimeWarning, match="quitter2"):
        assert "gray" in [i.name for i in colorplug.available()]


def test_builtins_win_name_conflicts_and_the_plugin_keeps_its_other_backends(make_plugin):
    src = PLUGIN_SOURCE.format(name="fusion", a=60.0) + (
        "\n@colorplug.hookimpl(specname='colorplug_register_colorizers')\n"
        "def more(register):\n"
        "    register('mytint', lambda weights=None, device='auto', **o: Tint(**o),\n"
        "             colorplug.BackendInfo(name='mytint', description='x'))\n")
    make_plugin("colorplug-usurper", {"usurper": "cp_test_usurper"}, {"cp_test_usurper": src})
    with pytest.warns(RuntimeWarning, match="colorplug-usurper.*fusion.*built-in"):
        reg = colorplug.registry.default_registry()
    assert reg.entry("fusion").distribution == "colorplug (built-in)"
    assert reg.entry("mytint").distribution == "colorplug-usurper"
    failure = [f for f in reg.failures if f.stage == "conflict"][0]
    assert "colorplug-usurper" in failure.error and "colorplug (built-in)" in failure.error


def test_a_plugin_that_takes_a_builtin_name_then_fails_leaves_the_builtin_working(make_plugin):
    src = PLUGIN_SOURCE.format(name="gray", a=60.0).replace(
        'register("gray", lambda weights=None, device="auto", **o: Tint(**o), INFO)',
        'register("gray", lambda weights=None, device="auto", **o: Tint(**o), INFO)\n'
        '    raise RuntimeError("half registered")')
    make_plugin("colorplug-halfgray", {"halfgray": "cp_test_halfgray"}, {"cp_test_halfgray": src})
    with pytest.warns(RuntimeWarning):
        out = colorplug.get("gray").colorize(np.full((3, 3), 100, np.uint8))
    assert out.shape == (3, 3, 3) and (out[..., 0] == out[..., 1]).all()


def test_rollback_of_a_failed_plugin_restores_a_third_party_backend(make_plugin):
    reg = Registry(builtins=False, entry_points=False)

    class First:
        @colorplug.hookimpl
        def colorplug_register_colorizers(self, register):
            register("tint", lambda **o: None, colorplug.BackendInfo(name="tint", description=""))

    class Second:
        @colorplug.hookimpl
        def colorplug_register_colorizers(self, register):
            register("tint", lambda **o: None, colorplug.BackendInfo(name="tint", description=""))
            raise RuntimeError("boom")

    reg.add_plugin(First(), "first", "dist-first")
    with pytest.warns(RuntimeWarning):
        reg.add_plugin(Second(), "second", "dist-second")
    assert reg.entry("tint").distribution == "dist-first"


def test_a_slow_plugin_import_is_named_with_its_time(make_plugin, capsys):
    from colorplug.cli import main

    make_plugin("colorplug-slow", {"slow": "cp_test_slow"},
                {"cp_test_slow": "import time\ntime.sleep(2.2)\n"
                 + PLUGIN_SOURCE.format(name="slowtint", a=5.0)})
    with pytest.warns(RuntimeWarning, match=r"'slow' \(colorplug-slow\) took 2\.\d s to import.*"
                                            r"COLORPLUG_DISABLE_PLUGINS=slow"):
        assert main(["plugins"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if "colorplug-slow" in l][0]
    assert float(line.split()[2]) >= 2.0


BAD_OUTPUT_PLUGIN = """
import numpy as np, colorplug
INFO = colorplug.BackendInfo(name="{name}", description="returns a bad result")
class Bad:
    info = INFO
    def colorize(self, image, *, reference=None, hints=None):
        return {expr}
    def colorize_batch(self, images, *, reference=None, hints=None):
        return [self.colorize(i) for i in images]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("{name}", lambda weights=None, device="auto", **o: Bad(), INFO)
"""


@pytest.mark.parametrize("expr, message", [
    ("np.zeros((7, 9, 3), np.uint8)", "returned 9x7 pixels for the image of 128x96"),
    ("np.full(image.shape + (3,), np.nan, np.float32)", "NaN or infinite"),
    ("np.full(image.shape + (3,), 1e30, np.float32)", "outside [0, 1]"),
    ("np.empty(image.shape + (3,), object)", "dtype object"),
    ("np.zeros(image.shape, np.uint8)", "shaped (96, 128)"),
    ("None", "returned NoneType"),
    # issue 27 item 14: these passed the checks
    ("np.zeros(image.shape + (3,), np.uint16)", "dtype uint16 for the image where "
                                                "output_dtype uint8 was asked for"),
    ("np.zeros(image.shape + (4,), np.uint8)", "added an alpha channel"),
    ("np.zeros(image.shape[:2] + (3,), np.uint8)", "dropped an alpha channel"),
])
def test_plugin_output_is_validated_with_the_plugin_named(make_plugin, expr, message):
    make_plugin("colorplug-badout", {"badout": "cp_test_badout"},
                {"cp_test_badout": BAD_OUTPUT_PLUGIN.format(name="badout", expr=expr)})
    image = np.zeros((96, 128, 4) if "dropped" in message else (96, 128), np.uint8)
    with pytest.raises(colorplug.BackendError, match=r"backend 'badout' \(colorplug-badout\)") as e:
        colorplug.get("badout").colorize(image)
    assert message in str(e.value)


def test_unknown_backend_option_lists_the_valid_ones():
    with pytest.raises(colorplug.ColorplugError, match="has no option 'wrking_size'.*working_size"):
        colorplug.get("fusion", wrking_size=64)
    with pytest.raises(colorplug.ColorplugError, match="has no option 'colour'"):
        colorplug.get("gray", colour=1)


def test_registry_is_built_once_under_concurrent_first_use(monkeypatch):
    import threading

    import colorplug.registry as registry_mod

    built = []
    real_init = Registry.__init__

    def counting_init(self, *a, **k):
        built.append(1)
        real_init(self, *a, **k)

    monkeypatch.setattr(Registry, "__init__", counting_init)
    barrier = threading.Barrier(8)

    def first_call():
        barrier.wait()
        registry_mod.default_registry()

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1
