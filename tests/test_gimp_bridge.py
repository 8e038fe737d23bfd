"""The GIMP transport without GIMP: the bridge's request checks and pixel-file rules, and the
plug-in's worker client (its transport section is plain Python) against a real worker."""
from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from colorplug import gimp_bridge

from .conftest import REPO

PLUGIN_FILE = REPO / "gimp" / "colorplug_gimp" / "colorplug_gimp.py"


def plugin_module():
    """The plug-in file, imported outside GIMP (gi absent: only its transport part works)."""
    spec = importlib.util.spec_from_file_location("colorplug_gimp_under_test", PLUGIN_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bridge_once(req, monkeypatch, capsys) -> tuple[int, list[str]]:
    """``python -m colorplug.gimp_bridge`` with one request on stdin, in this process."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(req)))
    code = gimp_bridge.main([])
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture
def call_dir(tmp_path) -> Path:
    d = tmp_path / "call"
    d.mkdir(mode=0o700)
    (d / "in.raw").write_bytes(np.arange(24, dtype=np.uint8).tobytes() * 10)
    return d


def request(call_dir: Path) -> dict:
    return {"command": "colorize", "backend": "gray", "device": "cpu", "dir": str(call_dir),
            "input": {"file": "in.raw", "width": 12, "height": 20, "channels": 1, "depth": 8},
            "reference": None, "hints": None, "output": {"file": "out.raw"}}


def error_of(lines: list[str]) -> dict:
    errors = [line for line in lines if line.startswith("error ")]
    assert len(errors) == 1, lines
    return json.loads(errors[0][len("error "):])


def test_a_good_request_colorizes(call_dir, monkeypatch, capsys):
    code, lines = bridge_once(request(call_dir), monkeypatch, capsys)
    assert code == 0 and lines[-1].startswith("result ")
    out = np.fromfile(call_dir / "out.raw", np.uint8).reshape(20, 12, 3)
    gray = np.frombuffer((call_dir / "in.raw").read_bytes(), np.uint8).reshape(20, 12)
    assert np.abs(out.astype(int) - gray[..., None]).max() <= 1  # gray backend: same lightness
    fractions = [float(line.split()[1]) for line in lines if line.startswith("progress ")]
    assert fractions == sorted(fractions) and len(fractions) >= 4  # per strip, monotonic
    assert sorted(p.name for p in call_dir.iterdir()) == ["in.raw", "out.raw"]  # no leftovers


def _set(path: str, value):
    def change(req):
        obj = req
        *parents, last = path.split(".")
        for key in parents:
            obj = obj[key]
        if value is KeyError:
            del obj[last]
        else:
            obj[last] = value
    return change


BAD_REQUESTS = [
    ("input", KeyError, "input"), ("input", None, "input"), ("input", [1, 2], "input"),
    ("input.width", "12", "input.width"), ("input.width", True, "input.width"),
    ("input.width", None, "width"), ("input.height", KeyError, "height"),
    ("input.height", 0, "input.height"), ("input.channels", 7, "channels"),
    ("input.depth", 12, "depth must be 8 or 16"), ("input.depth", "8", "depth"),
    ("input.file", KeyError, "file"), ("input.file", 3, "input.file"),
    ("output", KeyError, "output"), ("output", None, "output"),
    ("output.file", "../escape.raw", "plain file name"),
    ("output.file", "/tmp/escape.raw", "plain file name"),
    ("reference", {"file": "in.raw"}, "reference"), ("dir", KeyError, "dir"),
    ("dir", "call", "absolute"), ("dir", 5, "dir"), ("backend", 3, "backend"),
]


@pytest.mark.parametrize("path,value,words", BAD_REQUESTS,
                         ids=[f"{p}={v!r}" for p, v, _ in BAD_REQUESTS])
def test_malformed_requests_are_clear_errors(call_dir, monkeypatch, capsys, path, value, words):
    req = request(call_dir)
    _set(path, value)(req)
    code, lines = bridge_once(req, monkeypatch, capsys)
    err = error_of(lines)
    assert code == 1 and err["kind"] == "bad_request", err
    assert words in err["message"]
    for name in ("KeyError", "TypeError", "AttributeError", "ValueError"):
        assert name not in err["message"]
    assert not (call_dir.parent / "escape.raw").exists() and not Path("/tmp/escape.raw").exists()


def test_request_that_is_not_an_object(monkeypatch, capsys):
    code, lines = bridge_once([1, 2], monkeypatch, capsys)
    assert code == 1 and error_of(lines)["kind"] == "bad_request"


def test_fifo_pixel_file_is_refused_not_waited_on(call_dir, tmp_path):
    (call_dir / "in.raw").unlink()
    os.mkfifo(call_dir / "in.raw")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "colorplug.gimp_bridge"],
                          input=json.dumps(request(call_dir)), capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 1
    assert "not a regular file" in error_of(proc.stdout.splitlines())["message"]


def test_symlinked_pixel_file_is_refused(call_dir, monkeypatch, capsys):
    (call_dir / "in.raw").unlink()
    (call_dir / "in.raw").symlink_to("/etc/passwd")
    code, lines = bridge_once(request(call_dir), monkeypatch, capsys)
    assert code == 1 and "symlinks are refused" in error_of(lines)["message"]


def test_existing_output_is_never_overwritten(call_dir, monkeypatch, capsys):
    req = request(call_dir)
    req["output"]["file"] = "in.raw"  # even the input
    before = (call_dir / "in.raw").read_bytes()
    code, lines = bridge_once(req, monkeypatch, capsys)
    assert code == 1 and "already exists" in error_of(lines)["message"]
    assert (call_dir / "in.raw").read_bytes() == before
    assert sorted(p.name for p in call_dir.iterdir()) == ["in.raw"]  # no temporary left


def test_call_folder_must_be_private(call_dir, monkeypatch, capsys):
    call_dir.chmod(0o755)
    code, lines = bridge_once(request(call_dir), monkeypatch, capsys)
    assert code == 1 and "not private" in error_of(lines)["message"]
    link = call_dir.parent / "link"
    call_dir.chmod(0o700)
    link.symlink_to(call_dir)
    req = request(call_dir)
    req["dir"] = str(link)
    code, lines = bridge_once(req, monkeypatch, capsys)
    assert code == 1 and "not a real directory" in error_of(lines)["message"]
    req["dir"] = str(link) + "/"  # issue 28 item 12: a trailing slash followed the link
    code, lines = bridge_once(req, monkeypatch, capsys)
    assert code == 1 and "not a real directory" in error_of(lines)["message"]


def test_pixel_file_of_the_wrong_size(call_dir, monkeypatch, capsys):
    req = request(call_dir)
    req["input"]["height"] = 21
    code, lines = bridge_once(req, monkeypatch, capsys)
    assert code == 1 and "expected" in error_of(lines)["message"]


# ------------------------------------------------------------------------- the worker
@pytest.fixture
def worker(tmp_path, monkeypatch):
    """The plug-in's Worker for this checkout's colorplug, in a private folder; stopped after."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    folder = tmp_path / "worker"
    folder.mkdir(mode=0o700)
    mod = plugin_module()
    w = mod.Worker([sys.executable], folder=str(folder))
    w.mod = mod
    yield w
    w.stop()


def colorize_via(worker, backend="gray", size=(20, 12)) -> dict:
    h, w = size
    with worker.mod.CallDir() as call:
        with call.create("in.raw") as fh:
            fh.write((np.arange(h * w) % 256).astype(np.uint8).tobytes())
        seen: list[float] = []
        result = worker.request(
            {"command": "colorize", "backend": backend, "device": "cpu", "dir": call.path,
             "input": {"file": "in.raw", "width": w, "height": h, "channels": 1, "depth": 8},
             "output": {"file": "out.raw"}}, on_progress=seen.append)
        call.read("out.raw", h * w * 3)
        result["progress"] = seen
    return result


def test_worker_is_private_reused_and_caches_models(worker):
    first = colorize_via(worker)
    pid = worker.request({"command": "ping"})["pid"]
    second = colorize_via(worker)
    ping = worker.request({"command": "ping"})
    assert ping["pid"] == pid and ping["loads"] == 1  # one model load for both runs
    assert first["backend"] == second["backend"] == "gray" and len(first["progress"]) >= 4
    folder = Path(worker.dir)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "worker.sock").stat().st_mode & 0o077 == 0


def test_dead_worker_is_restarted(worker):
    pid = worker.request({"command": "ping"})["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert colorize_via(worker)["backend"] == "gray"
    assert worker.request({"command": "ping"})["pid"] != pid


def test_idle_worker_exits(worker, monkeypatch):
    monkeypatch.setenv("COLORPLUG_WORKER_IDLE", "1")
    worker.request({"command": "ping"})
    sock = Path(worker.dir) / "worker.sock"
    deadline = time.monotonic() + 20
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not sock.exists()  # it went away by itself
    monkeypatch.setenv("COLORPLUG_WORKER_IDLE", "600")
    assert worker.request({"command": "ping"})["pid"] > 0  # and comes back on demand


SLOW_PLUGIN = '''
import time, numpy as np, colorplug
from colorplug.pipeline import ChromaColorizer
INFO = colorplug.BackendInfo(name="stuck", description="test: takes 60 s")
class Stuck(ChromaColorizer):
    info = INFO
    def predict_chroma(self, lightness, *, reference, hints):
        time.sleep(60)
        return [np.zeros((2, 2, 2), np.float32) for _ in lightness]
@colorplug.hookimpl
def colorplug_register_colorizers(register):
    register("stuck", lambda weights=None, device="auto", **o: Stuck(**o), INFO)
'''


def test_timeout_stops_a_stuck_worker(worker, make_plugin):
    make_plugin("colorplug-stuck", {"stuck": "cp_test_stuck"}, {"cp_test_stuck": SLOW_PLUGIN})
    pid = worker.request({"command": "ping"})["pid"]
    start = time.monotonic()
    with pytest.raises(worker.mod.BridgeError) as info:
        with worker.mod.CallDir() as call:
            with call.create("in.raw") as fh:
                fh.write(bytes(16))
            worker.request({"command": "colorize", "backend": "stuck", "dir": call.path,
                            "input": {"file": "in.raw", "width": 4, "height": 4, "channels": 1},
                            "output": {"file": "out.raw"}}, line_timeout=3)
    assert info.value.kind == "timeout" and time.monotonic() - start < 30
    assert worker.request({"command": "ping"})["pid"] != pid  # a fresh worker next time


def test_backend_list_is_cached_until_colorplug_or_plugins_change(worker, make_plugin):
    site = make_plugin("colorplug-stuck", {"stuck": "cp_test_stuck2"},
                       {"cp_test_stuck2": SLOW_PLUGIN})
    listed = worker.backends()
    names = [b["name"] for b in listed]
    assert "stuck" in names and "gray" in names
    assert all(set(b) >= {"needs_reference", "needs_hints", "default"} for b in listed)
    default = [b["name"] for b in worker.backends() if b["default"]]
    import colorplug

    assert default == [colorplug.default_backend()]
    worker.stop()  # no worker now: a cached answer must not start one
    sock = Path(worker.dir) / "worker.sock"
    assert [b["name"] for b in worker.backends()] == names and not sock.exists()
    later = time.time() + 5
    os.utime(site / "cp_test_stuck2.py", (later, later))  # the plugin changed
    assert [b["name"] for b in worker.backends()] == names and sock.exists()  # asked again


def test_worker_restarts_itself_when_a_plugin_changes(worker, make_plugin):
    site = make_plugin("colorplug-stuck", {"stuck": "cp_test_stuck3"},
                       {"cp_test_stuck3": SLOW_PLUGIN})
    pid = worker.request({"command": "ping"})["pid"]
    later = time.time() + 5
    os.utime(site / "cp_test_stuck3.py", (later, later))
    assert "stuck" in [b["name"] for b in worker.request({"command": "list"})["backends"]]
    assert worker.request({"command": "ping"})["pid"] != pid  # stale code was not used


@pytest.mark.parametrize("python,words", [
    (["/nonexistent/python3"], "python not found"),
    (["/usr/bin/env", "/nonexistent/python3"], "python not found"),
    ([sys.executable, "-c", "import sys; sys.exit(3)"], "exit 3"),
])
def test_python_that_cannot_run_the_worker_is_reported(tmp_path, python, words):
    """Item 7: a Python that is missing or exits at once gives its reason, never
    '[Errno 32] Broken pipe' (several tries: it used to be a race)."""
    mod = plugin_module()
    folder = tmp_path / "worker"
    folder.mkdir(mode=0o700)
    for _ in range(3):
        with pytest.raises(mod.BridgeError) as info:
            mod.Worker(python, folder=str(folder)).request({"command": "list"})
        assert words in str(info.value) and "Broken pipe" not in str(info.value)


# ------------------------------------------------------------- the worker under abuse (issue 28 item 12)
def _raw(worker, data: bytes, *, timeout: float = 10.0) -> tuple[list[str], bool]:
    """Send `data` on a new connection; the lines answered and whether the worker then
    closed the connection (EOF) within `timeout`."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(Path(worker.dir) / "worker.sock"))
    try:
        sock.sendall(data)
        got = b""
        closed = False
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                closed = True
                break
            got += chunk
        return got.decode().splitlines(), closed
    finally:
        sock.close()


def test_deeply_nested_json_is_a_bad_request_and_the_worker_lives(worker):
    pid = worker.request({"command": "ping"})["pid"]
    lines, closed = _raw(worker, b"[" * 5000 + b"\n")
    assert lines and lines[0].startswith("error ") and "nested too deeply" in lines[0]
    assert closed  # answered, then the connection is closed
    assert (Path(worker.dir) / "worker.sock").exists()
    assert worker.request({"command": "ping"})["pid"] == pid  # the same worker, alive


def test_malformed_json_is_answered_and_the_connection_closed(worker):
    worker.request({"command": "ping"})
    lines, closed = _raw(worker, b"{not json\n")
    assert lines[0].startswith("error ") and "bad request" in lines[0]
    assert closed


def test_a_silent_client_does_not_hold_up_the_others(worker):
    """A connected client that sends nothing used to block every other client for 30 s."""
    import socket

    worker.request({"command": "ping"})
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(Path(worker.dir) / "worker.sock"))
    try:
        lines, closed = _raw(worker, b'{"command": "ping"}\n', timeout=10.0)
        assert lines and lines[0].startswith("result ") and closed
    finally:
        silent.close()


def test_a_regular_file_named_like_the_socket_is_never_deleted(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir(mode=0o700)
    (folder / "worker.sock").write_text("the user's file")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p))
    done = subprocess.run([sys.executable, "-m", "colorplug.gimp_bridge", "--serve",
                           str(folder), "--idle", "1"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 2 and "not a socket of this user" in done.stderr
    assert (folder / "worker.sock").read_text() == "the user's file"


def test_a_worker_folder_someone_else_made_is_not_used(tmp_path, monkeypatch):
    """Another user could pre-create /tmp/colorplug-worker-UID (XDG_RUNTIME_DIR unset) and
    block the plug-in: a folder that is not private to us is passed over for a fresh one."""
    mod = plugin_module()
    base = tmp_path / "runtime"
    base.mkdir()
    planted = base / f"colorplug-worker-{os.getuid()}"
    planted.mkdir()
    planted.chmod(0o777)  # open to others: as if another user had made it
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    got = Path(mod.worker_dir())
    assert got != planted and got.is_dir()
    assert got.stat().st_mode & 0o777 == 0o700 and got.stat().st_uid == os.getuid()
    got.rmdir()
    planted.chmod(0o700)  # private again: the usual folder is used
    assert Path(mod.worker_dir()) == planted


def test_compiled_files_python_writes_are_not_a_change_of_colorplug():
    """Issue 28 item 10: the worker restarted after each backend's first run on a fresh
    install, taking its own new .pyc files for 'colorplug changed'."""
    import colorplug
    from colorplug import gimp_bridge

    watch = gimp_bridge.watch_list()
    cache = Path(colorplug.__file__).parent / "backends" / "__pycache__"
    cache.mkdir(exist_ok=True)
    new = cache / f"colorplug_test_{os.getpid()}.cpython-311.pyc"
    new.write_bytes(b"compiled")
    try:
        assert not gimp_bridge.changed(watch)
    finally:
        new.unlink()
    source = Path(gimp_bridge.__file__)
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 1))
    try:
        assert gimp_bridge.changed(watch)  # a source file's change still counts
    finally:
        os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns - 1))


def test_the_log_of_a_worker_that_died_survives_the_next_start(worker):
    """Issue 28 item 11: the worker log named in 'stopped in the middle' was overwritten by
    the next run; the last few are kept."""
    first = worker.request({"command": "ping"})["pid"]
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    second = worker.request({"command": "ping"})["pid"]
    assert second != first
    folder = Path(worker.dir)
    assert f"colorplug worker {second} listening" in (folder / "worker.log").read_text()
    assert f"colorplug worker {first} listening" in (folder / "worker.log.1").read_text()
