import hashlib
import json

import numpy as np
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
        colorplug.get("autoencoder", weights=url + "#sha256=" + "0" * 64, device="cpu",
                      download=True)
    with pytest.raises(colorplug.WeightsError, match="downloads only when asked"):
        colorplug.get("autoencoder", weights=f"{url}#sha256={digest}", device="cpu")
    assert not (tmp_path / "cache" / "weights").exists() or \
        not list((tmp_path / "cache" / "weights").iterdir())
    c = colorplug.get("autoencoder", weights=f"{url}#sha256={digest}", device="cpu",
                      download=True)
    assert c.model.cfg.latent == 256
    cached = list((tmp_path / "cache" / "weights").iterdir())
    assert len(cached) == 1 and cached[0].name.endswith("ae.safetensors")


# ------------------------------------------------------------------ hardening
def _nan_weights(model, path):
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key].view(-1)[0] = float("nan")
    wts.save(path, state, {"backend": "autoencoder", "config": model.cfg.to_dict()})
    return key


def test_nan_weights_are_refused_at_load_not_turned_into_black_images(tmp_path):
    model = Autoencoder()
    key = _nan_weights(model, tmp_path / "nan.safetensors")
    with pytest.raises(colorplug.WeightsError, match=f"nan.safetensors.*NaN or infinite.*{key}"):
        colorplug.get("autoencoder", weights=tmp_path / "nan.safetensors", device="cpu")


def test_shipped_name_in_weights_dir_is_held_to_the_shipped_checksum(tmp_path, monkeypatch):
    name = AutoencoderWeights.DEFAULT.spec.filename
    model = Autoencoder()
    wts.save(tmp_path / name, model.state_dict(), {"config": model.cfg.to_dict()})
    (tmp_path / (name + ".sha256")).unlink()  # no own checksum: the shipped one applies
    monkeypatch.setenv("COLORPLUG_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(colorplug.WeightsError, match="corrupt or was modified"):
        colorplug.get("autoencoder", device="cpu")


def test_a_weights_dir_that_does_not_exist_is_an_error(monkeypatch):
    monkeypatch.setenv("COLORPLUG_WEIGHTS_DIR", "/nonexistent/weights")
    with pytest.raises(colorplug.WeightsError, match="COLORPLUG_WEIGHTS_DIR=/nonexistent/weights "
                                                     "is not a folder"):
        colorplug.get("autoencoder", device="cpu")


@pytest.mark.parametrize("manifest, message", [
    ({"ae.safetensors": {"size": 3}}, 'has no "sha256"'),
    (["ae.safetensors"], "must be a JSON object"),
    ({"ae.safetensors": {"sha256": "nothex"}}, "is not a SHA-256"),
    ("{broken json", "cannot read weights manifest"),
])
def test_malformed_manifests_are_weights_errors(saved, manifest, message):
    path, _, _ = saved
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (path.parent / "manifest.json").write_text(text)
    with pytest.raises(colorplug.WeightsError, match=message):
        colorplug.get("autoencoder", weights=path, device="cpu")


def test_empty_sidecar_is_a_weights_error(saved):
    path, _, _ = saved
    (path.parent / "ae.safetensors.sha256").write_text("")
    with pytest.raises(colorplug.WeightsError, match="ae.safetensors.sha256.*is empty"):
        colorplug.get("autoencoder", weights=path, device="cpu")


@pytest.mark.parametrize("url, message", [
    ("https://example.invalid/w.safetensors#sha256=nothex", "is not a SHA-256"),
    ("https://example.invalid/w.safetensors#sha256=abcd1234", "is not a SHA-256"),
    ("ht!tp://[::1/w#sha256=" + "a" * 64, "malformed weights URL"),
    ("https://example.invalid/w.safetensors", "append #sha256=HEX"),
])
def test_bad_weights_urls_are_refused_before_any_download(url, message):
    with pytest.raises(colorplug.WeightsError, match=message):
        colorplug.get("autoencoder", weights=url, device="cpu")


def test_sha256_prefixes_only_where_the_spec_says_so():
    assert wts.parse_sha256("9B330A0B", prefix_ok=True) == "9b330a0b"
    with pytest.raises(colorplug.WeightsError, match="64 hex digits"):
        wts.parse_sha256("9b330a0b")
    with pytest.raises(colorplug.WeightsError, match="prefix of at least 8"):
        wts.parse_sha256("9b330a", prefix_ok=True)
    assert wts.sha256_matches("9b330a0b" + "0" * 56, "9b330a0b")
    assert not wts.sha256_matches("9b330a0c" + "0" * 56, "9b330a0b")


def test_weights_of_another_backend_name_it(tmp_path):
    from colorplug.backends.fusion.colorizer import FusionWeights

    fusion = wts.SHIPPED_DIR / FusionWeights.DEFAULT.spec.filename
    with pytest.raises(colorplug.WeightsError, match="trained for the 'fusion' backend, not "
                                                     "'autoencoder'"):
        colorplug.get("autoencoder", weights=fusion, device="cpu")
    # no backend recorded: the foreign config is still a WeightsError, not a TypeError
    state, meta = wts.load_file(wts.resolve(fusion, None))
    wts.save(tmp_path / "anon.safetensors", state, {"config": meta["config"]})
    with pytest.raises(colorplug.WeightsError, match="configuration this autoencoder model "
                                                     "does not take"):
        colorplug.get("autoencoder", weights=tmp_path / "anon.safetensors", device="cpu")


def test_broken_metadata_json_is_a_weights_error(tmp_path):
    from safetensors.torch import save_file

    model = Autoencoder()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              tmp_path / "m.safetensors", metadata={"colorplug": "{not json"})
    with pytest.raises(colorplug.WeightsError, match="broken colorplug metadata"):
        colorplug.get("autoencoder", weights=tmp_path / "m.safetensors", device="cpu")


@pytest.mark.parametrize("spec", ["torchvision:/etc/passwd", "torchvision:", "torchvision:/nope"])
def test_torchvision_weights_that_are_not_weights(spec):
    with pytest.raises(colorplug.WeightsError, match="torchvision|similarity_weights"):
        colorplug.get("exemplar", similarity_weights=spec, device="cpu")


def test_non_finite_model_output_is_an_error_naming_backend_and_weights(tmp_path):
    # finite weights that overflow: +-1e30 weights make inf - inf = NaN inside the network
    model = Autoencoder()
    state = model.state_dict()
    gen = torch.Generator().manual_seed(0)
    for k, v in state.items():
        if v.is_floating_point() and k.endswith("weight"):
            v.copy_(torch.randn(v.shape, generator=gen).sign() * 1e30)
    wts.save(tmp_path / "huge.safetensors", state,
             {"backend": "autoencoder", "config": model.cfg.to_dict()})
    colorizer = colorplug.get("autoencoder", weights=tmp_path / "huge.safetensors", device="cpu")
    with pytest.raises(colorplug.BackendError, match="'autoencoder' produced NaN or infinite "
                                                     "colours with weights .*huge.safetensors"):
        colorizer.colorize(np.full((40, 40), 120, np.uint8))


def test_bfloat16_weights_load():
    model = Autoencoder()
    state = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v)
             for k, v in model.state_dict().items()}
    wts.load_into(Autoencoder(), state, source="bf16")
