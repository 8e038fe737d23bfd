"""Every `colorplug` command in the weights docs runs as written (issue 31 item 1).

The commands are read from the shell blocks of docs/weights.md and docs/backends/zoo.md and
run in a fresh process against a server on 127.0.0.1 (through the documented
COLORPLUG_WEIGHTS_MIRROR) that serves stand-ins under the published file names. Only the
published files carry the declared SHA-256s, so each command is expected to get as far as
that check (or, for a file given by path, the strict load) and stop there with a clear
error: names, flags, consent and the download are all exercised; an unknown name, a usage
error or a traceback fails the test.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = (ROOT / "docs" / "weights.md", ROOT / "docs" / "backends" / "zoo.md")


def documented_commands() -> list[tuple[str, str]]:
    """(doc, command) for every line of a sh/bash block that runs colorplug."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```(?:sh|bash)\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                line = re.split(r"\s+#", line)[0].strip()
                if line.startswith("colorplug "):
                    found.append((doc.name, line))
    return found


def test_the_docs_have_commands_to_test():
    commands = [c for _, c in documented_commands()]
    assert any(" weights fetch " in c for c in commands)
    assert any(" weights import " in c for c in commands)
    assert any("--download" in c for c in commands)


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        CountingHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A 127.0.0.1 server with a stand-in (random bytes) under every published file name."""
    from colorplug_zoo import catalog

    folder = tmp_path_factory.mktemp("mirror")
    rng = np.random.default_rng(0)
    for spec in catalog.WEIGHTS.values():
        (folder / spec.filename).write_bytes(rng.bytes(4096))
    handler = functools.partial(CountingHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("doc,command", documented_commands(),
                         ids=[f"{d}:{c}" for d, c in documented_commands()])
def test_a_documented_command_runs_as_written(doc, command, mirror, tmp_path):
    from PIL import Image

    import colorplug
    from colorplug_zoo import catalog

    words = shlex.split(command)
    # the files a user would have at hand: a photo, and a file brought on a USB stick
    Image.fromarray(colorplug.sample("astronaut_gray")).save(tmp_path / "photo.jpg")
    words = ["ddcolor_modelscope.pth" if w == "FILE" else w for w in words]
    for w in words:
        if w.endswith(".pth") and not (tmp_path / w).exists():
            (tmp_path / w).write_bytes(np.random.default_rng(1).bytes(4096))
        if "weights=" in w:  # a checkpoint, but not DDColor's: the strict load must say so
            import torch

            torch.save({"params": {"stem.weight": torch.zeros(1)}},
                       tmp_path / w.split("weights=")[1])
    env = {**os.environ, "COLORPLUG_CACHE": str(tmp_path / "cache"),
           "COLORPLUG_WEIGHTS_MIRROR": mirror}
    env.pop("COLORPLUG_OFFLINE", None)
    before = len(CountingHandler.requests)
    r = subprocess.run([sys.executable, "-m", *words], cwd=tmp_path, env=env, text=True,
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
    err = r.stderr
    assert "Traceback" not in err and "usage:" not in err and "unknown" not in err, err
    assert r.returncode in (1, 2), err  # stopped at the check only the published files pass
    downloads = CountingHandler.requests[before:]
    if " fetch " in command or "--download" in command:
        names = {catalog.WEIGHTS[n].filename for n in catalog.WEIGHTS}
        assert downloads and all(p.lstrip("/") in names for p in downloads)
        assert "expected" in err and "sha256" in err.lower() and "nothing was kept" in err
    else:
        assert downloads == []  # import and a path never touch the network
        if "weights=" in command:  # a path: loaded strictly into the backend's network
            assert "do not fit this model" in err and "missing" in err, err
        else:  # import: held to the declared size and SHA-256
            assert "not the published file" in err and "nothing was imported" in err, err
    assert not (tmp_path / "out.png").exists()
    assert not list((tmp_path / "cache").rglob("*.safetensors"))
