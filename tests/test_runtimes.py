"""runtime="onnx" / "openvino" (colorplug.runtimes) for the built-in default backend `fusion`:
the same image through torch and through each runtime on the same weights agrees within
1/255 of the output; the export is made once per weights file and kept; a missing runtime
package is a clear error; `colorplug export` writes a file ONNX Runtime loads and never
overwrites. The zoo's backends have their own in plugins/colorplug-zoo/tests."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import colorplug
from colorplug import color, colour_bins, gimp_bridge, weights
from colorplug.backends.fusion.model import FusionConfig, FusionNet
from colorplug.cli import main
from colorplug.runtimes import cache_path

RUNTIMES = ["onnx", "openvino"]
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One weights cache for the module: each weights file is exported once, and both
    runtimes run that one file."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLORPLUG_CACHE", str(folder))
        yield folder


@pytest.fixture
def in_cache(cache, monkeypatch):
    monkeypatch.setenv("COLORPLUG_CACHE", str(cache))
    return cache


def images() -> list[np.ndarray]:
    """Sizes that give different working shapes (the export's axes are dynamic) and a
    batch of two of one shape."""
    sample = colorplug.sample()
    return [sample[:200, :300], sample[100:300, 50:350], sample[:90, :60],
            sample[300:333, 200:250]]


def chroma(rgb: np.ndarray) -> float:
    return float(np.hypot(*np.moveaxis(color.rgb_to_lab(rgb / 255.0)[..., 1:], -1, 0)).mean())


def assert_parity(runtime: str, torch_out: list[np.ndarray], out: list[np.ndarray]) -> None:
    for a, b in zip(torch_out, out):
        assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
        diff = int(np.abs(a.astype(int) - b.astype(int)).max())
        # issue 31's bound: 1/255, one uint8 level (float32 sums reordered by the
        # other runtime may flip one rounding)
        assert diff <= 1, f"runtime={runtime}: max |difference| {diff}/255 from torch"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fusion_runtime_matches_torch(in_cache, runtime):
    reference_c = colorplug.get("fusion", device="cpu")
    c = colorplug.get("fusion", runtime=runtime)
    assert c.exported is not None and c.exported.runtime == runtime
    imgs = images()
    expected = reference_c.colorize_batch(imgs)
    assert min(chroma(e) for e in expected) > 3  # colour to compare: above CIELAB's JND ~2.3
    assert_parity(runtime, expected, c.colorize_batch(imgs))
    warm = colorplug.sample("astronaut_color")  # the global path from a reference
    assert_parity(runtime, [reference_c.colorize(imgs[0], reference=warm)],
                  [c.colorize(imgs[0], reference=warm)])


@pytest.fixture(scope="module")
def bins_weights(tmp_path_factory):
    """Random fusion weights with the bins head (what --colour-loss bins trains): the
    export's output is then bin logits, decoded after it as with torch."""
    torch.manual_seed(3)
    centres = torch.from_numpy(colour_bins.in_gamut_bins())
    cfg = FusionConfig(width=0.125, colour_head="bins", num_bins=len(centres))
    net = FusionNet(cfg).eval()
    net.bin_centres.copy_(centres)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        net.colorize[-1].weight.mul_(40)  # peaked bin distributions: colour, not gray
    path = tmp_path_factory.mktemp("bins") / "fusion_bins.safetensors"
    weights.save(path, net.state_dict(), {"backend": "fusion", "config": cfg.to_dict()})
    return path


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fusion_bins_weights_runtime_matches_torch(in_cache, bins_weights, runtime):
    imgs = images()[:2]
    for options in ({}, {"temperature": 0.1, "steering": 0.5}):
        expected = colorplug.get("fusion", weights=str(bins_weights), device="cpu",
                                 **options).colorize_batch(imgs)
        assert min(chroma(e) for e in expected) > 3  # above CIELAB's JND ~2.3 (Sharma 2003)
        got = colorplug.get("fusion", weights=str(bins_weights), runtime=runtime,
                            **options).colorize_batch(imgs)
        assert_parity(runtime, expected, got)


def test_the_export_is_made_once_per_weights_file(in_cache):
    c = colorplug.get("fusion", runtime="onnx")
    digest = weights.sha256_file(c.metadata["weights_file"])
    path = cache_path("fusion", digest)
    assert c.exported.path == path and path.parent == in_cache / "weights"
    assert digest in path.name
    before = path.stat()
    again = colorplug.get("fusion", runtime="openvino")  # the same file, not exported again
    assert again.exported.path == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not [p for p in path.parent.iterdir() if p.suffix != ".onnx"]  # no temporaries


def test_a_damaged_cached_export_is_made_again(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORPLUG_CACHE", str(tmp_path / "cache"))
    shipped = colorplug.get("fusion", device="cpu").metadata["weights_file"]
    path = cache_path("fusion", weights.sha256_file(shipped))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not onnx")  # e.g. a disk that filled up under another program
    with pytest.warns(RuntimeWarning, match="could not be loaded.*exported again"):
        c = colorplug.get("fusion", runtime="onnx")
    assert path.stat().st_size > 1000
    assert c.colorize(images()[2]).shape == images()[2].shape + (3,)


BLOCKER = textwrap.dedent('''
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None
    sys.meta_path.insert(0, Block())
    import colorplug
    try:
        colorplug.get("fusion", runtime={runtime!r})
    except colorplug.ColorplugError as exc:
        print("ColorplugError:", exc)
    else:
        print("no error")
''')


@pytest.mark.parametrize("runtime, blocked, words", [
    ("onnx", ["onnxruntime"], 'runtime=\'onnx\' needs onnxruntime, which is not installed: '
                              'pip install "colorplug[onnx]"'),
    ("openvino", ["openvino"], 'runtime=\'openvino\' needs openvino, which is not installed: '
                               'pip install "colorplug[openvino]"'),
    ("onnx", ["onnxscript"], 'exporting the network to ONNX needs onnxscript, which is not '
                             'installed: pip install "colorplug[onnx]"'),
])
def test_a_missing_runtime_package_says_what_to_install(tmp_path, runtime, blocked, words):
    """In a child process whose imports of `blocked` fail as if it were not installed (the
    export is not cached there, so the exporter's packages are needed too)."""
    script = BLOCKER.format(blocked=blocked, runtime=runtime)
    env = dict(os.environ, COLORPLUG_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"ColorplugError: {words}" in proc.stdout, proc.stdout + proc.stderr[-2000:]


def test_runtime_option_errors(in_cache):
    with pytest.raises(colorplug.InputError, match=r"option 'runtime' must be one of 'torch', "
                                                   r"'onnx', 'openvino'; got 'tensorrt'"):
        colorplug.get("fusion", runtime="tensorrt")
    with pytest.raises(colorplug.UnknownOptionError,
                       match=r"backend 'autoencoder' runs with torch only: its option "
                             r"'runtime' takes only 'torch', not 'onnx'; .*offered by: .*fusion"):
        colorplug.get("autoencoder", runtime="onnx")
    plain = colorplug.get("autoencoder", runtime="torch", device="cpu")  # every backend
    assert plain.colorize(images()[2]).shape == images()[2].shape + (3,)
    assert colorplug.get("fusion", runtime="torch", device="cpu").exported is None
    with pytest.raises(colorplug.DeviceError, match="runtime='onnx' runs the network on the "
                                                    "CPU"):
        colorplug.get("fusion", runtime="onnx", device="cuda")


def test_hosts_learn_the_runtimes_from_backend_info():
    infos = {i.name: i for i in colorplug.available()}
    assert infos["fusion"].runtimes == ("torch", "onnx", "openvino")
    assert infos["autoencoder"].runtimes == ("torch",)
    listed = {b["name"]: b for b in gimp_bridge.backends()}  # what the GIMP plug-in reads
    assert listed["fusion"]["runtimes"] == ["torch", "onnx", "openvino"]
    assert listed["gray"]["runtimes"] == ["torch"]


def test_the_gimp_bridge_runs_a_runtime(in_cache, tmp_path, monkeypatch, capsys):
    import io

    call = tmp_path / "call"
    call.mkdir(mode=0o700)
    gray = images()[2]
    (call / "in.raw").write_bytes(gray.tobytes())
    req = {"command": "colorize", "backend": "fusion", "device": "auto", "runtime": "onnx",
           "dir": str(call), "input": {"file": "in.raw", "width": gray.shape[1],
                                       "height": gray.shape[0], "channels": 1, "depth": 8},
           "reference": None, "hints": None, "output": {"file": "out.raw"}}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(req)))
    assert gimp_bridge.main([]) == 0, capsys.readouterr().out
    out = np.fromfile(call / "out.raw", np.uint8).reshape(gray.shape + (3,))
    expected = colorplug.get("fusion", device="cpu", intensity_range="dtype").colorize(gray)
    assert np.abs(out.astype(int) - expected).max() <= 1
    capsys.readouterr()
    (call / "out.raw").unlink()
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({**req, "backend": "gray"})))
    gimp_bridge.main([])
    error = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error ")]
    assert "runs with torch only" in json.loads(error[0][6:])["message"]


def test_export_command_writes_an_onnx_file_and_never_overwrites(in_cache, tmp_path, capsys):
    import onnxruntime as ort

    target = tmp_path / "out" / "fusion.onnx"
    assert main(["export", "fusion", "--format", "onnx", "-o", str(target)]) == 0
    assert "inputs local (?x1x?x?), global (?x1x224x224)" in capsys.readouterr().out
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["local", "global"]
    local = np.random.default_rng(0).random((1, 1, 96, 128), dtype=np.float32)
    glob = np.random.default_rng(1).random((1, 1, 224, 224), dtype=np.float32)
    out = session.run(None, {"local": local, "global": glob})[0]
    assert out.shape == (1, 2, 48, 64) and np.isfinite(out).all()
    # the file is the network run by runtime="onnx": the same numbers as torch's
    net = colorplug.get("fusion", device="cpu").model
    with torch.no_grad():
        expected = net(torch.from_numpy(local),
                       global_vector=net.global_features(torch.from_numpy(glob))[0])[0]
    assert np.abs(out - expected.numpy()).max() < 1e-4
    before = target.read_bytes()
    assert main(["export", "fusion", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"'{target}' exists; use --overwrite to replace it" in err
    assert target.read_bytes() == before
    assert main(["export", "fusion?working_size=128", "-o", str(target), "--overwrite",
                 "--weights", "fusion_photos_split_v2", "-q"]) == 0
    assert target.read_bytes() != before and capsys.readouterr().out == ""
    assert sorted(p.name for p in target.parent.iterdir()) == ["fusion.onnx"]  # no temporaries
    assert main(["export", "gray", "-o", str(tmp_path / "gray.onnx")]) == 2
    assert "backend 'gray' cannot be exported: it runs its network with torch only" in \
        capsys.readouterr().err
    assert not (tmp_path / "gray.onnx").exists()


def test_colorize_command_takes_the_runtime_as_a_backend_option(in_cache, tmp_path, capsys):
    from colorplug.image import read_image, write_image

    src = tmp_path / "in.png"
    write_image(src, images()[0])
    for runtime in ("torch", "openvino"):
        assert main(["colorize", str(src), "-o", str(tmp_path / f"{runtime}.png"), "-b",
                     f"fusion?runtime={runtime}", "--device", "cpu", "-q"]) == 0
    a, b = (read_image(tmp_path / f"{r}.png") for r in ("torch", "openvino"))
    assert np.abs(a.astype(int) - b).max() <= 1
