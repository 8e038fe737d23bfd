import hashlib
import json

import pytest
import torch

import colorplug
from colorplug import weights as wts
from colorplug.backends.autoencoder.colorizer import AutoencoderWeights
from colorplug.backends.autoencoder.model import Autoencoder, AutoencoderConfig


@pytest.fixture
def saved(tmp_path):
    model = Autoencoder()
    path = tmp_path / "ae.safetensors"
    digest = wts.save(path, model.state_dict(), {"config": model.cfg.to_dict(), "note": "x"})
    return path, digest, model


def test_save_writes_metadata_and_checksum(saved):
    path, digest, model = saved
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert (path.parent / "ae.safetensors.sha256").read_text().split()[0] == digest
    state, meta = wts.load_file(wts.resolve(path, None))
    assert meta["note"] == "x" and meta["config"]["latent"] == 256
    assert torch.equal(state["encoder.fc.weight"], model.state_dict()["encoder.fc.weight"])


def test_corrupt_byte_is_caught_by_checksum(saved):
    path, _, _ = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(colorplug.WeightsError, match="ae.safetensors.*corrupt or was modified"):
        colorplug.get("autoencoder", weights=path, device="cpu")


def test_truncated_file_without_checksum_is_a_clear_error(saved):
    path, _, _ = saved
    (path.parent / "ae.safetensors.sha256").unlink()
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(colorplug.WeightsError, match="ae.safetensors.*truncated or corrupt"):
        colorplug.get("autoencoder", weights=path, device="cpu")
    path.write_bytes(b"\x01")
    with pytest.raises(colorplug.WeightsError, match="truncated or corrupt"):
        colorplug.get("autoencoder", weights=path, device="cpu")


def test_missing_weights(tmp_path):
    with pytest.raises(colorplug.WeightsError, match="weights file not found.*nothing.safetensors"):
        colorplug.get("autoencoder", weights=tmp_path / "nothing.safetensors")


def test_strict_loading_rejects_other_models(tmp_path):
    other = torch.nn.Linear(3, 3)
    path = tmp_path / "other.safetensors"
    wts.save(path, other.state_dict(), {})
    with pytest.raises(colorplug.WeightsError, match="do not fit this model: missing decoder.*unexpected bias, weight"):
        colorplug.get("autoencoder", weights=path, device="cpu")
    model = Autoencoder()
    state = dict(model.state_dict())
    state["encoder.fc.bias"] = torch.zeros(7)
    wts.save(path, state, {})
    with pytest.raises(colorplug.WeightsError, match="shape mismatch encoder.fc.bias"):
        colorplug.get("autoencoder", weights=path, device="cpu")


def test_metadata_config_builds_the_matching_variant(tmp_path):
    model = Autoencoder(AutoencoderConfig(variant="dropout_bn"))
    path = tmp_path / "bn.safetensors"
    wts.save(path, model.state_dict(), {"config": model.cfg.to_dict()}, half=True)
    c = colorplug.get("autoencoder", weights=path, device="cpu")
    assert c.model.cfg.variant == "dropout_bn"


def test_shipped_weights_are_listed_in_manifest_and_verified():
    manifest = json.loads((wts.SHIPPED_DIR / "manifest.json").read_text())
    spec = AutoencoderWeights.DEFAULT.spec
    assert spec.filename in manifest
    resolved = wts.resolve(None, spec)
    assert resolved.sha256 == manifest[spec.filename]["sha256"]
    assert wts.sha256_file(resolved.path) == resolved.sha256


def test_weights_dir_override(saved, monkeypatch, tmp_path):
    path, _, _ = saved
    wdir = tmp_path / "wdir"
    wdir.mkdir()
    target = wdir / AutoencoderWeights.DEFAULT.spec.filename
    target.write_bytes(path.read_bytes())
    wts.update_manifest(wdir, target.name)
    monkeypatch.setenv("COLORPLUG_WEIGHTS_DIR", str(wdir))
    assert wts.resolve(None, AutoencoderWeights.DEFAULT.spec).path == target
    c = colorplug.get("autoencoder", device="cpu")
    saved_state, _ = wts.load_file(wts.resolve(path, None))
    assert torch.equal(c.model.state_dict()["encoder.fc.bias"], saved_state["encoder.fc.bias"])
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")  # tampered after the manifest
    with pytest.raises(colorplug.WeightsError, match="corrupt or was modified"):
        colorplug.get("autoencoder", device="cpu")


def test_url_weights_need_and_check_a_checksum(saved, monkeypatch, tmp_path):
    path, digest, _ = saved
    monkeypatch.setenv("COLORPLUG_CACHE", str(tmp_path / "cache"))
    url = path.as_uri()
    with pytest.raises(colorplug.WeightsError, match="needs its checksum"):
        colorplug.get("autoencoder", weights=url, device="cpu")
    with pytest.raises(colorplug.WeightsError, match="expected 0000"):
        colorplug.get("autoencoder", weights=url + "#sha256=" + "0" * 64, device="cpu")
    c = colorplug.get("autoencoder", weights=f"{url}#sha256={digest}", device="cpu")
    assert c.model.cfg.latent == 256
    cached = list((tmp_path / "cache" / "weights").iterdir())
    assert len(cached) == 1 and cached[0].name.endswith("ae.safetensors")
