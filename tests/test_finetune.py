"""Teach it your images (issue 32): fine-tune from shipped weights, register the result by
name, use it from the API and the CLI; the registry's round trip; refusals; Ctrl-C.

Every run here is the autoencoder (6.9 MB shipped weights, 32-px network): a few steps on
six generated photos take seconds. The user's weights folder is platformdirs' user data
folder, which a real user moves with XDG_DATA_HOME; the tests point it at a temporary folder.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from colorplug.image import write_image

CLI = [sys.executable, "-m", "colorplug"]


def photos(folder: Path, n: int = 6, seed: int = 0, cast: float = 1.0) -> Path:
    """Colour photos with a learnable colour cast (red on bright, blue on dark) of strength
    `cast` (0: gray)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        base = rng.uniform(0, 1, (1, 1))
        yy, xx = np.mgrid[0:96, 0:96] / 96.0
        light = np.clip(0.5 * xx + 0.4 * yy + 0.1 * base, 0, 1)
        rgb = np.stack([light, 0.3 * light, 1 - light], -1)
        rgb = cast * rgb + (1 - cast) * light[..., None]
        write_image(folder / f"p{i}.png", (rgb * 255).astype(np.uint8))
    return folder


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home / "colorplug" / "weights"


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=300, **kw)


def tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_finetune_from_shipped_weights_then_use_by_name_in_api_and_cli(tmp_path, user_data):
    import colorplug
    from colorplug.weights import SHIPPED_DIR, sha256_file

    data = photos(tmp_path / "mine")
    r = cli("train", "autoencoder", "--from", "default", "--data", str(data), "--name", "mine",
            "--epochs", "3", "--steps-per-epoch", "3", "--batch-size", "4", "--lr", "1e-3",
            "--quiet")
    assert r.returncode == 0, r.stderr
    assert "registered as your weights 'mine'" in r.stdout
    own = user_data / "mine.safetensors"
    card = json.loads((user_data / "mine.json").read_text())
    base_file = SHIPPED_DIR / "autoencoder_photos32_split_v2.safetensors"
    assert card["backend"] == "autoencoder"
    assert card["base"]["sha256"] == sha256_file(base_file)
    assert card["data"]["count"] == 6 and len(card["data"]["sha256"]) == 64
    assert card["training"]["steps"] == 9 and "val_psnr" in card["kept"]
    assert card["sha256"] == sha256_file(own)
    # trained: the kept tensors moved away from the base's
    kept, base = tensors(own), tensors(base_file)
    assert set(kept) == set(base)
    assert any(not np.allclose(kept[k].float().numpy(), base[k].float().numpy()) for k in kept)

    gray = (np.linspace(0, 255, 64 * 64).reshape(64, 64)).astype(np.uint8)
    mine = colorplug.get("autoencoder", weights="mine", device="cpu")
    assert mine.metadata["weights_file"] == str(own)
    assert mine.metadata["base"]["sha256"] == card["base"]["sha256"]
    out_mine = mine.colorize(gray)
    out_default = colorplug.get("autoencoder", device="cpu").colorize(gray)
    assert np.abs(out_mine.astype(int) - out_default.astype(int)).max() > 0

    write_image(tmp_path / "g.png", gray)
    r = cli("colorize", "-b", "autoencoder?weights=mine", str(tmp_path / "g.png"),
            "-o", str(tmp_path / "out.png"))
    assert r.returncode == 0, r.stderr
    from colorplug.image import read_image

    assert np.array_equal(read_image(tmp_path / "out.png"), out_mine)

    listed = cli("weights", "list").stdout
    line = next(x for x in listed.splitlines() if x.startswith("mine "))
    assert "yours" in line and "autoencoder from default" in line


def test_registry_round_trip_export_remove_import(tmp_path, user_data):
    from colorplug.weights import sha256_file

    data = photos(tmp_path / "mine")
    assert cli("train", "autoencoder", "--from", "default", "--data", str(data), "--name", "a",
               "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4",
               "--quiet").returncode == 0
    digest = sha256_file(user_data / "a.safetensors")
    r = cli("weights", "export", "a", str(tmp_path / "shared.safetensors"))
    assert r.returncode == 0, r.stderr
    assert sha256_file(tmp_path / "shared.safetensors") == digest
    assert json.loads((tmp_path / "shared.json").read_text())["base"]["weights"] == "default"
    # export never overwrites unasked
    r = cli("weights", "export", "a", str(tmp_path / "shared.safetensors"))
    assert r.returncode != 0 and "already exist" in r.stderr
    assert cli("weights", "remove", "a").returncode == 0
    assert not (user_data / "a.safetensors").exists()
    r = cli("colorize", "-b", "autoencoder?weights=a", str(data / "p0.png"), "-o",
            str(tmp_path / "x.png"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    r = cli("weights", "import", str(tmp_path / "shared.safetensors"), "--name", "b")
    assert r.returncode == 0, r.stderr
    assert sha256_file(user_data / "b.safetensors") == digest
    card = json.loads((user_data / "b.json").read_text())
    assert card["base"]["weights"] == "default" and card["imported_from"]
    assert "b " in cli("weights", "list").stdout
    # a tampered copy is refused on import (its sidecar no longer matches)
    blob = bytearray((tmp_path / "shared.safetensors").read_bytes())
    blob[-1] ^= 1
    (tmp_path / "shared.safetensors").write_bytes(bytes(blob))
    r = cli("weights", "import", str(tmp_path / "shared.safetensors"), "--name", "c")
    assert r.returncode != 0 and "corrupt or was modified" in r.stderr
    assert not (user_data / "c.safetensors").exists()


def test_from_refuses_another_backends_weights_and_names_already_taken(tmp_path, user_data):
    from colorplug.weights import SHIPPED_DIR

    data = photos(tmp_path / "mine")
    cgan = SHIPPED_DIR / "cgan_resnet18_bins_split_v2.safetensors"
    r = cli("train", "autoencoder", "--from", str(cgan), "--data", str(data), "--name", "x",
            "--epochs", "1", "--steps-per-epoch", "1", "--quiet")
    assert r.returncode != 0
    assert "trained for the 'cgan' backend" in r.stderr and "Traceback" not in r.stderr
    assert not (user_data / "x.safetensors").exists()
    # a shipped name cannot be taken by the user's weights
    r = cli("train", "autoencoder", "--from", "default", "--data", str(data), "--name",
            "fusion_photos_split_v2", "--epochs", "1", "--quiet")
    assert r.returncode == 2 and "already exist" in r.stderr
    # exemplar is not fine-tunable from shipped weights
    r = cli("train", "exemplar", "--stage", "color", "--from", "default", "--data", str(data),
            "--name", "y")
    assert r.returncode == 2 and "cannot be fine-tuned" in r.stderr


def test_the_base_competes_so_a_ruinous_learning_rate_keeps_the_base(tmp_path, user_data):
    """Validation before the first step: when every fine-tuned epoch validates worse (a
    learning rate far too high), the kept weights are the base's own."""
    from colorplug.weights import SHIPPED_DIR

    data = photos(tmp_path / "mine", cast=0.05)  # nearly gray: the base is close already
    r = cli("train", "autoencoder", "--from", "default", "--data", str(data), "--name", "ruin",
            "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4", "--lr", "0.5",
            "--quiet")
    assert r.returncode == 0, r.stderr
    kept = tensors(user_data / "ruin.safetensors")
    base = tensors(SHIPPED_DIR / "autoencoder_photos32_split_v2.safetensors")
    assert all(np.allclose(kept[k].float().numpy(), base[k].float().numpy()) for k in base)
    assert json.loads((user_data / "ruin.json").read_text())["kept"]["epoch"] == 0


def test_ctrl_c_keeps_the_best_so_far_as_the_named_weights(tmp_path, user_data):
    data = photos(tmp_path / "mine")
    env = {**os.environ, "XDG_DATA_HOME": str(user_data.parents[1])}
    proc = subprocess.Popen(CLI + ["train", "autoencoder", "--from", "default", "--data",
                                   str(data), "--name", "cut", "--minutes", "30",
                                   "--batch-size", "4", "--steps-per-epoch", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # as from a terminal: an earlier test (Qt, dask) may leave SIGINT
                            # ignored in this process, and a child inherits that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # Ctrl-C once the second fine-tuned epoch is reported (its JSON line on stdout): the
    # first one's checkpoint is written by then
    for line in proc.stdout:
        if line.startswith('{"epoch": 2,'):
            break
    proc.send_signal(signal.SIGINT)
    out, errs = proc.communicate(timeout=120)
    assert proc.returncode == 130, errs
    assert "kept the best validated weights so far as your weights 'cut'" in errs
    card = json.loads((user_data / "cut.json").read_text())
    assert card["training"]["interrupted"] is True
    import colorplug

    gray = np.full((32, 32), 128, np.uint8)
    assert colorplug.get("autoencoder", weights="cut", device="cpu").colorize(gray).shape == \
        (32, 32, 3)
    # the same command with --resume continues and replaces the interrupted entry
    r = subprocess.run(CLI + ["train", "autoencoder", "--from", "default", "--data", str(data),
                              "--name", "cut", "--minutes", "0.05", "--batch-size", "4",
                              "--steps-per-epoch", "2", "--resume", "--quiet"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((user_data / "cut.json").read_text())["training"]["interrupted"] is False


def test_finetune_api_with_a_val_folder_and_a_stop_callback(tmp_path, user_data):
    from colorplug.train.finetune import finetune

    data, val = photos(tmp_path / "mine"), photos(tmp_path / "val", n=2, seed=1)
    records = []
    result = finetune("autoencoder", data, name="api", val=[val], minutes=10,
                      options=["--batch-size", "4", "--steps-per-epoch", "2"],
                      progress=False, on_record=records.append,
                      stop=lambda: len(records) >= 3)
    assert result.name == "api" and result.path == user_data / "api.safetensors"
    assert [r["epoch"] for r in records] == [0, 1, 2]  # stopped within a step of asking
    assert "val_psnr" in records[0] and records[0]["base"] == "default"
    assert result.card["val"]["folders"] == [str(val.resolve())]
