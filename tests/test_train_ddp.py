"""The shared training loop under torchrun: 2 CPU processes (gloo) against one process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from colorplug.cli import main

REPO = Path(__file__).resolve().parents[1]
# 2 epochs x 10 steps of a global batch of 16; a gentle lr so the curve is not chaotic
COMMON = ["--steps-per-epoch", "10", "--batch-size", "16", "--lr", "3e-4", "--seed", "0",
          "--device", "cpu", "--quiet"]

pytestmark = [pytest.mark.slow,  # torchrun processes: pytest -m slow
              pytest.mark.skipif(not torch.distributed.is_available(),
                                 reason="this torch has no torch.distributed")]


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=N -m colorplug train ...` as a user types it
    (a free rendezvous port each time, one thread per process on a shared machine)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", "-m", "colorplug", "train", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_two_processes_follow_one_and_resume(photo_dir, tmp_path, capsys):
    single = tmp_path / "one" / "ae.safetensors"
    assert main(["train", "autoencoder", "--data", str(photo_dir), "--out", str(single),
                 "--epochs", "2", *COMMON]) == 0
    one = [r["train_loss"] for r in records(capsys.readouterr().out)]

    out = tmp_path / "two" / "ae.safetensors"
    run = torchrun(2, "autoencoder", "--data", str(photo_dir), "--out", str(out),
                   "--epochs", "2", *COMMON)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = records(run.stdout)
    assert [r["epoch"] for r in lines] == [1, 2]  # rank 0 alone logs
    two = [r["train_loss"] for r in lines]
    for a, b in zip(one, two):
        assert abs(b - a) / a < 0.05, (one, two)
    ckpt = torch.load(out.with_suffix(".ckpt"), weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng_ranks"]) == 2
    # the ranks augmented differently: their random streams were seeded apart
    assert not torch.equal(ckpt["rng_ranks"][0]["torch"], ckpt["rng_ranks"][1]["torch"])

    # a different world size cannot continue it (here: one process, no torchrun)
    assert main(["train", "autoencoder", "--data", str(photo_dir), "--out", str(out),
                 "--epochs", "3", "--resume", *COMMON]) == 2
    err = capsys.readouterr().err
    assert "was written by 2 process(es) and this run has 1" in err

    # the same world size continues, exactly as an unbroken 3-epoch run of 2 processes
    run = torchrun(2, "autoencoder", "--data", str(photo_dir), "--out", str(out),
                   "--epochs", "3", "--resume", *COMMON)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("resumed from") == 1
    assert [r["epoch"] for r in records(run.stdout)] == [3]
    straight = tmp_path / "straight" / "ae.safetensors"
    run = torchrun(2, "autoencoder", "--data", str(photo_dir), "--out", str(straight),
                   "--epochs", "3", *COMMON)
    assert run.returncode == 0, run.stderr[-3000:]
    resumed = torch.load(out.with_suffix(".ckpt"), weights_only=True)["model"]
    unbroken = torch.load(straight.with_suffix(".ckpt"), weights_only=True)["model"]
    assert all(torch.equal(resumed[k], unbroken[k]) for k in unbroken)


def test_global_batch_must_split_evenly(photo_dir, tmp_path):
    run = torchrun(2, "autoencoder", "--data", str(photo_dir), "--out",
                   str(tmp_path / "ae.safetensors"), "--epochs", "1", "--steps-per-epoch", "1",
                   "--batch-size", "3", "--device", "cpu", "--quiet")
    assert run.returncode != 0
    msg = "--batch-size 3 is the global batch and must divide evenly among the 2 processes"
    assert run.stderr.count(msg) == 1  # rank 0 alone reports it
    assert not (tmp_path / "ae.safetensors").exists()


SPY = '''
import argparse, os, sys, torch
from colorplug.backends.cgan import train as cgan
from colorplug.train import TrainConfig, fit

p = argparse.ArgumentParser(); cgan.add_arguments(p)
task = cgan.make_task(p.parse_args(["--crop", "32", "--ngf", "8", "--ndf", "8"]))
seen = {}
wrap_players = task.ddp_wrap
def ddp_wrap(model, wrap):  # keep this rank's GAN to compare after training
    seen["model"] = model
    return wrap_players(model, wrap)
def report(val_logs):       # called on every rank after each epoch
    torch.save(dict(seen["model"].named_parameters()),
               os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.pt"))
task.ddp_wrap, task.report = ddp_wrap, report
fit(task, TrainConfig(data=[sys.argv[2]], out=os.path.join(sys.argv[1], "g.safetensors"),
                      epochs=1, steps_per_epoch=3, batch_size=4, device="cpu"), progress=False)
'''


def test_cgan_players_stay_identical_across_ranks(photo_dir, tmp_path):
    """The discriminator is stepped inside the task: both players must still see averaged
    gradients, so every rank ends with the same generator and discriminator."""
    script = tmp_path / "spy.py"
    script.write_text(SPY)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", str(script), str(tmp_path), str(photo_dir)],
                         cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1",
                                        "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert any(k.startswith("d.") for k in a) and any(k.startswith("g.") for k in a)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert (tmp_path / "g.safetensors").exists()


def test_a_task_that_cannot_synchronise_is_refused(photo_dir, tmp_path):
    """A (third-party) task that steps a network of its own sets `distributed_ok = False`:
    torchrun refuses it by name instead of training each rank apart."""
    script = tmp_path / "refuse.py"
    script.write_text(
        "import sys\n"
        "from colorplug.backends.autoencoder.train import AutoencoderTask\n"
        "from colorplug.train import TrainConfig, fit\n"
        "task = AutoencoderTask()\n"
        "task.distributed_ok = False\n"
        "fit(task, TrainConfig(data=[sys.argv[1]], out=sys.argv[2], epochs=1,\n"
        "                      steps_per_epoch=1, batch_size=2, device='cpu'), progress=False)\n")
    out = tmp_path / "ae.safetensors"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=2", str(script), str(photo_dir), str(out)],
                         cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1",
                                        "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "backend 'autoencoder' cannot train under torchrun yet" in run.stderr
    assert not out.exists()
