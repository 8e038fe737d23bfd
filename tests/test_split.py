"""The fixed train / val / test split: disjoint parts, whole test packages, stable val."""
from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from colorplug.errors import InputError
from colorplug.train.split import (TEST_PACKAGES_V1, build_split, load_split, name_bucket,
                                   parse_split_spec)


def test_shipped_split_is_disjoint_and_holds_out_whole_packages():
    split = load_split("photos_v1")
    parts = {p: set(split.names(p)) for p in ("train", "val", "test")}
    assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]
    assert not parts["val"] & parts["test"]
    test_packages = {split.package[n] for n in parts["test"]}
    assert test_packages == set(TEST_PACKAGES_V1)
    # no photo of a test package is anywhere else
    for n in parts["train"] | parts["val"]:
        assert split.package[n] not in TEST_PACKAGES_V1
    assert 0.12 <= len(parts["test"]) / len(split.part_of) <= 0.2
    assert len(parts["val"]) >= 20


def _manifest(tmp_path, rows):
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "package", "licence"])
        w.writerows(rows)
    return path


def test_val_is_a_stable_hash_of_the_name(tmp_path):
    rows = [(f"pkg__{i}.jpg", "pkg", "CC0") for i in range(200)]
    rows += [(f"scratch__{i}.png", p, "GPL-2+") for i, p in enumerate(TEST_PACKAGES_V1)]
    a = build_split(_manifest(tmp_path, rows))
    b = build_split(_manifest(tmp_path, list(reversed(rows[:150])) + rows[200:]))
    for name in b.part_of:  # the same photo lands in the same part whatever else is listed
        assert a.part_of[name] == b.part_of[name]
    assert all((name_bucket(n) < 0.1) == (a.part_of[n] == "val") for n in a.names("train") +
               a.names("val"))


def test_errors_are_clear(tmp_path):
    with pytest.raises(InputError, match="unknown split 'nope'.*photos_v1"):
        load_split("nope")
    with pytest.raises(InputError, match="NAME:PART"):
        parse_split_spec("photos_v1")
    with pytest.raises(InputError, match="train, val, test"):
        parse_split_spec("photos_v1:holdout")
    with pytest.raises(InputError, match="test packages not in"):
        build_split(_manifest(tmp_path, [("a.jpg", "pkg", "CC0")]))


def test_train_reads_no_test_photo_and_eval_selects_a_part(tmp_path, capsys):
    """`train --split` trains on train, validates on val and never reads a test photo;
    `eval --split NAME:PART` evaluates exactly that part."""
    from colorplug.cli import main

    split = load_split("photos_v1")
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    chosen = split.names("train")[:3] + split.names("val")[:2] + split.names("test")[:2]
    for name in chosen:  # the split matches photos by file name
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(data / name)
    out = tmp_path / "w.safetensors"
    assert main(["train", "autoencoder", "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--steps-per-epoch", "1", "--batch-size", "2", "--split", "photos_v1",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "split photos_v1: 3 train, 2 val photos; 2 test photos not read" in printed
    val_list = out.with_suffix(".val.txt").read_text().split()
    assert sorted(val_list) == sorted(split.names("val")[:2])
    assert main(["eval", "--data", str(data), "--split", "photos_v1:test", "-q"]) == 0
    table = capsys.readouterr().out
    assert "gray" in table
    assert main(["eval", "--data", str(data), "--split", "photos_v1:nope", "-q"]) == 2
    assert "train, val, test" in capsys.readouterr().err
