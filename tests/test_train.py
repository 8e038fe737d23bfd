import json

import numpy as np
import pytest
import torch

import colorplug
from colorplug import weights as wts
from colorplug.cli import main
from colorplug.train import split_paths


def test_split_is_deterministic_by_name(tmp_path):
    from pathlib import Path

    paths = [Path(f"/x/img{i}.jpg") for i in range(200)]
    train, val = split_paths(paths, 0.1)
    assert 8 <= len(val) <= 35 and len(train) + len(val) == 200
    _, val_again = split_paths(list(reversed(paths)) + [Path("/y/new.png")], 0.1)
    assert set(p.name for p in val) <= set(p.name for p in val_again)


def test_a_small_folder_whose_names_all_hash_into_val_still_trains():
    """Ten images whose names all fall in the val buckets (a user's folder can): about a
    fifth is val, the rest trains (it used to leave nothing to train on)."""
    import hashlib
    from pathlib import Path

    def bucket(name: str) -> float:
        return int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    names = [f"p{i}.png" for i in range(2000) if bucket(f"p{i}.png") < 0.2][:10]
    train, val = split_paths([Path(n) for n in names], 0.2)
    assert len(val) == 2 and len(train) == 8
    assert split_paths([Path(n) for n in reversed(names)], 0.2)[1] == sorted(
        val, key=lambda p: bucket(p.name))


def test_two_step_training_writes_loadable_weights(photo_dir, tmp_path, capsys):
    out = tmp_path / "run" / "ae.safetensors"
    args = ["train", "autoencoder", "--data", str(photo_dir), "--out", str(out),
            "--epochs", "2", "--steps-per-epoch", "1", "--batch-size", "4",
            "--val-fraction", "0.3", "--device", "cpu", "--quiet"]
    assert main(args) == 0
    assert out.exists() and (out.parent / "ae.safetensors.sha256").exists()
    assert (out.parent / "ae_samples" / "epoch_001.png").exists()
    assert out.with_suffix(".ckpt").exists()
    meta = wts.read_metadata(out)
    assert meta["backend"] == "autoencoder" and meta["config"]["variant"] == "none"
    assert meta["training"]["n_val_images"] >= 1
    assert meta["training"]["n_train_images"] + meta["training"]["n_val_images"] == 6
    c = colorplug.get("autoencoder", weights=out, device="cpu")
    assert c.colorize(np.zeros((5, 5), np.uint8)).shape == (5, 5, 3)
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    assert [l["epoch"] for l in lines] == [1, 2]

    # an existing run is never silently replaced
    assert main(args) == 2
    assert "exist; pass --resume to continue that run or --overwrite" in capsys.readouterr().err
    # resume continues from the checkpoint instead of starting over
    assert main(args[:-1] + ["--epochs", "3", "--resume", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "resumed from" in printed
    assert [json.loads(l)["epoch"] for l in printed.splitlines() if l.startswith("{")] == [3]


def test_same_seed_same_weights(photo_dir, tmp_path):
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run / "ae.safetensors"
        main(["train", "autoencoder", "--data", str(photo_dir), "--out", str(out), "--epochs",
              "1", "--steps-per-epoch", "2", "--batch-size", "2", "--device", "cpu", "--quiet"])
        outs.append(wts.load_file(wts.resolve(out, None))[0])
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])


def test_resumed_training_equals_an_unbroken_run(photo_dir, tmp_path):
    def run(out, epochs, *extra):
        assert main(["train", "autoencoder", "--data", str(photo_dir), "--out", str(out),
                     "--epochs", str(epochs), "--steps-per-epoch", "4", "--batch-size", "1",
                     "--val-fraction", "0.3", "--device", "cpu", "--quiet", *extra]) == 0
        return torch.load(out.with_suffix(".ckpt"), weights_only=True)["model"]

    straight = run(tmp_path / "a" / "ae.safetensors", 3)
    run(tmp_path / "b" / "ae.safetensors", 2)
    resumed = run(tmp_path / "b" / "ae.safetensors", 3, "--resume")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_train_errors(tmp_path, capsys):
    assert main(["train"]) == 2
    assert "trainable backends: autoencoder" in capsys.readouterr().err
    assert main(["train", "--help"]) == 0
    assert "trainable backends: autoencoder" in capsys.readouterr().out
    assert main(["train", "autoencoder", "--data", "x", "--out", str(tmp_path / "w.safetensors"),
                 "--resume"]) == 2
    assert "--resume: no checkpoint" in capsys.readouterr().err
    assert main(["train", "gray", "--data", "x", "--out", "y"]) == 2
    assert "nothing to train" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", "autoencoder", "--data", str(tmp_path / "empty"), "--out",
                 str(tmp_path / "w.safetensors"), "--quiet"]) == 2
    assert "no image files" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, said", [
    ("--epochs", "-1", "must be at least 1; got -1"), ("--epochs", "0", "at least 1"),
    ("--batch-size", "0", "at least 1"), ("--lr", "nan", "must be above 0"),
    ("--val-fraction", "1.5", "below 1"), ("--steps-per-epoch", "x", "not a int")])
def test_numbers_a_run_cannot_use_are_flag_errors(photo_dir, tmp_path, capsys, flag, value,
                                                  said):
    """Issue 27 item 12: --epochs -1 wrote untrained weights and exited 0."""
    out = tmp_path / "ae.safetensors"
    with pytest.raises(SystemExit) as stop:
        main(["train", "autoencoder", "--data", str(photo_dir), "--out", str(out),
              flag, value, "--device", "cpu", "--quiet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and said in err
    assert not out.exists()


def test_a_non_finite_loss_is_a_training_error_naming_step_and_lr(photo_dir, tmp_path,
                                                                 capsys):
    """Issue 27 item 18: a NaN loss surfaced as a FloatingPointError traceback."""
    out = tmp_path / "ae.safetensors"
    assert main(["train", "autoencoder", "--data", str(photo_dir), "--out", str(out),
                 "--epochs", "1", "--steps-per-epoch", "6", "--batch-size", "2",
                 "--lr", "1e30", "--device", "cpu", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "training loss became" in err and "at step" in err
    assert "learning rate 1e+30" in err and "lower --lr" in err
    assert "Traceback" not in err
