"""The generic training loop: one `fit` for every backend."""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader

from .. import weights as wts
from ..errors import TrainingError
from ..device import resolve_device
from ..image import write_bytes_atomic, write_image
from .data import collect, split_paths


@dataclass
class TrainConfig:
    """Options shared by every backend's training (the CLI's common flags)."""

    data: list[str]
    out: Path
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.1
    device: str = "auto"
    amp: bool = True
    workers: int = 0
    resume: bool = False
    steps_per_epoch: int | None = None
    time_limit_min: float | None = None
    half: bool = False
    split: str | None = None  # a fixed split (colorplug.train.split): train/val from it, test never read
    extra: dict[str, Any] = field(default_factory=dict)
    #: fine-tuning: the weights training starts from (`BaseWeights`); None trains from scratch
    base: "BaseWeights | None" = None
    #: validation photos from these folders instead of a part carved from `data`
    val_data: list[str] | None = None
    #: a hard budget in minutes: training stops within a step of it, then validates once more
    budget_min: float | None = None


@dataclass
class BaseWeights:
    """Weights a fine-tuning run starts from: their tensors, metadata and what they are
    called (``default``, a registered name or a file), loaded and checked by the backend."""

    state: dict[str, Any]
    meta: dict[str, Any]
    label: str
    sha256: str | None = None
    #: the file stores float16 (the fine-tuned weights are stored the same way)
    half: bool = False


class Stop(Protocol):
    def __call__(self) -> bool: ...


class TrainTask(Protocol):
    """What a backend supplies to `fit`."""

    name: str

    def build_model(self) -> torch.nn.Module: ...

    def config_dict(self) -> dict[str, Any]: ...

    def datasets(self, train: list[Path], val: list[Path], cfg: TrainConfig) -> tuple[Any, Any]: ...

    def optimizer(self, model: torch.nn.Module, cfg: TrainConfig) -> tuple[Any, Any]: ...

    def loss(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float]]: ...

    def samples(self, model: torch.nn.Module, batch: Any) -> list[torch.Tensor]: ...

    # Optional: `export(model) -> Module` (what the weights file holds, e.g. a GAN's
    # generator), `state_dict()` / `load_state_dict(d)` (task-owned state such as a second
    # optimizer, kept in the checkpoint), `report(val_logs) -> str | None` (a warning for
    # the epoch record, e.g. mode collapse).


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state(loader_generator: torch.Generator) -> dict[str, Any]:
    """Every random stream training draws from, in types `torch.load(weights_only=True)`
    reads back: Python's, NumPy's (as lists), torch's CPU and CUDA, the DataLoader's."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": [kind, torch.from_numpy(np.asarray(keys, np.int64)), int(pos),
                      int(has_gauss), float(cached)],
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "loader": loader_generator.get_state()}


def set_rng_state(saved: dict[str, Any], loader_generator: torch.Generator) -> None:
    """Restore what `rng_state` saved, so a resumed run draws what the unbroken one would."""
    version, internal, gauss = saved["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(saved["torch"])
    if saved.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])
    if saved.get("loader") is not None:
        loader_generator.set_state(saved["loader"])


def read_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """A training checkpoint, read with ``weights_only=True`` (no code runs on load)."""
    import pickle

    if not path.is_file():
        raise wts.WeightsError(f"--resume: no checkpoint {str(path)!r} to resume from; start "
                               "without --resume (the checkpoint sits beside --out)")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (Exception, pickle.UnpicklingError) as exc:  # noqa: BLE001 - torch.load's many kinds
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise wts.WeightsError(f"cannot read checkpoint {str(path)!r}: {first[:300]}") from None


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def save_grid(path: Path, columns: list[torch.Tensor], rows: int = 8) -> None:
    """Rows of [input | prediction | truth] images (N, 3, H, W) in [0, 1] -> PNG."""
    cols = [c[:rows].detach().float().cpu().clamp(0, 1) for c in columns]
    grid = torch.cat([torch.cat(list(c), dim=1) for c in cols], dim=2)  # (3, rows*H, k*W)
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    write_image(path, arr, overwrite=True)


def train_val_paths(paths: list[Path], cfg: TrainConfig, say: Any = None
                    ) -> tuple[list[Path], list[Path]]:
    """Training and validation photos: from the fixed split `cfg.split` (its test photos are
    never read; photos it does not list are left out), else a hash split by file name."""
    if not cfg.split:
        return split_paths(paths, cfg.val_fraction)
    from ..errors import InputError
    from .split import load_split

    split = load_split(cfg.split)
    train, val = split.select(paths, "train"), split.select(paths, "val")
    if not train:
        raise InputError(f"--split {cfg.split}: none of the {len(paths)} photos in --data is in "
                         "its train part (file names must match the split's list)")
    unknown = split.unknown(paths)
    if say:
        say(f"split {split.name}: {len(train)} train, {len(val)} val photos; "
            f"{len(split.select(paths, 'test'))} test photos not read"
            + (f"; {len(unknown)} photos the split does not list left out" if unknown else ""))
    return train, val


def fit(task: TrainTask, cfg: TrainConfig, *, progress: bool = True,
        on_record: Any = None, stop: Stop | None = None) -> dict[str, Any]:
    """Train `task` as `cfg` says; returns a summary (also stored in the weights metadata).

    `on_record(record)` receives each epoch's JSON record (a GUI's progress); `stop()` is
    asked every step and ends training at once when true (a Cancel button): the weights
    kept are the best validated so far. Under ``torchrun`` (WORLD_SIZE > 1) every process
    runs this with its own share of each batch (see `colorplug.train.distributed`); rank 0
    alone logs, validates and writes.
    """
    from .distributed import session

    with session(cfg.device) as env:
        return _fit(task, cfg, env, progress, on_record, stop)


def image_scores(columns: list[torch.Tensor]) -> dict[str, float]:
    """Mean PSNR (dB, on 8-bit sRGB) and, where scikit-image is installed, CIEDE2000 of a
    validation batch's predictions against the truth (`TrainTask.samples`' last two)."""
    pred = (columns[-2].detach().float().cpu().clamp(0, 1) * 255).round().numpy()
    truth = (columns[-1].detach().float().cpu().clamp(0, 1) * 255).round().numpy()
    mse = ((pred - truth) ** 2).reshape(len(pred), -1).mean(axis=1)
    scores = {"psnr": float(np.mean(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))))}
    import importlib.util

    if importlib.util.find_spec("skimage") is not None:  # ΔE00: the eval extra
        from ..evaluate import delta_e2000

        scores["delta_e"] = float(np.mean([
            delta_e2000(p.transpose(1, 2, 0), t.transpose(1, 2, 0))
            for p, t in zip(pred, truth)]))
    return scores


def freeze_batchnorm(model: torch.nn.Module) -> None:
    """Batch-norm layers keep the base weights' running statistics (a few images make
    poor batch statistics); their scale and shift still learn."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def load_base(task: TrainTask, model: torch.nn.Module, base: BaseWeights) -> None:
    """Put the base weights into the model strictly (into what `export` ships, e.g. a GAN's
    generator), so fine-tuning starts where they are."""
    target = task.export(model) if hasattr(task, "export") else model
    wts.load_into(target, base.state, source=f"--from {base.label}")


def _fit(task: TrainTask, cfg: TrainConfig, env: Any, progress: bool, on_record: Any = None,
         stop: Stop | None = None) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from .distributed import CollectiveError, sync_batchnorm, wrap_ddp

    world, rank = env.world_size, env.rank
    if cfg.batch_size % world:
        raise CollectiveError(f"--batch-size {cfg.batch_size} is the global batch and must "
                              f"divide evenly among the {world} processes")
    if env.distributed and not getattr(task, "distributed_ok", True):
        raise CollectiveError(f"backend {task.name!r} cannot train under torchrun yet (its task "
                              "steps a second network the loop cannot synchronise); train it "
                              "in a single process")
    seed_everything(cfg.seed + rank)  # each rank augments differently; DDP syncs the weights
    device = env.device if env.distributed else resolve_device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    paths = collect(cfg.data)
    if cfg.val_data:
        train_paths, val_paths = paths, collect(cfg.val_data)
    else:
        train_paths, val_paths = train_val_paths(paths, cfg, say=print if env.is_main else None)
    if cfg.base is not None:
        if not hasattr(task, "adopt_config"):
            raise TrainingError(f"backend {task.name!r} cannot fine-tune (--from) yet; train it "
                                "from scratch")
        task.adopt_config(cfg.base.meta.get("config", {}))
    train_ds, val_ds = task.datasets(train_paths, val_paths, cfg)
    gen = torch.Generator().manual_seed(cfg.seed + rank)
    sampler = None
    if env.distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True,
                                     seed=cfg.seed, drop_last=True)
    train_dl = DataLoader(train_ds, batch_size=cfg.batch_size // world, shuffle=sampler is None,
                          sampler=sampler, drop_last=True, num_workers=cfg.workers,
                          generator=gen, pin_memory=device.type == "cuda",
                          persistent_workers=cfg.workers > 0)
    val_dl = DataLoader(val_ds, batch_size=cfg.batch_size, shuffle=False) \
        if val_ds and env.is_main else None

    model = task.build_model()
    if cfg.base is not None:
        load_base(task, model, cfg.base)
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    model, bn_note = sync_batchnorm(model, env)
    optimizer, scheduler = task.optimizer(model, cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    out = Path(cfg.out)
    ckpt_path = out.with_suffix(".ckpt")
    sample_dir = out.with_name(out.stem + "_samples")
    state = {"epoch": 0, "step": 0, "best": math.inf, "history": [], "elapsed": 0.0}
    say = print if env.is_main else (lambda *a, **k: None)
    if bn_note:
        say(bn_note)
    if cfg.resume:
        if env.distributed:  # rank 0 reads; the others need not see its disk
            ckpt = env.broadcast(read_checkpoint(ckpt_path, torch.device("cpu"))
                                 if env.is_main else None)
        else:
            ckpt = read_checkpoint(ckpt_path, device)
        saved_world = int(ckpt.get("world_size", 1))
        if saved_world != world:
            raise CollectiveError(
                f"--resume: {ckpt_path} was written by {saved_world} process(es) and this run "
                f"has {world}; resume with the same number (torchrun --nproc_per_node x "
                f"--nnodes = {saved_world}{', or no torchrun' if saved_world == 1 else ''}) "
                "so every process's data order and random streams continue")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler"):
            scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        state = ckpt["state"]
        if hasattr(task, "load_state_dict") and ckpt.get("task"):
            task.load_state_dict(ckpt["task"])
        if scheduler is not None and not ckpt.get("scheduler") and \
                not getattr(scheduler, "per_step", False):
            for _ in range(state["epoch"]):  # a schedule added on resume starts in step
                scheduler.step()
        set_rng_state(ckpt["rng_ranks"][rank] if env.distributed else ckpt["rng"], gen)
        say(f"resumed from {ckpt_path} at epoch {state['epoch']}")
    wrap = wrap_ddp(env)
    train_model = (task.ddp_wrap(model, wrap) if hasattr(task, "ddp_wrap") else wrap(model)) \
        if env.distributed else model
    if env.is_main:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(out.with_suffix(".val.txt"),
                           "".join(f"{p.name}\n" for p in val_paths).encode(), overwrite=True)
    start = time.time() - state["elapsed"]
    steps = cfg.steps_per_epoch
    # fine-tuning keeps what validates best, judged by PSNR, and the base itself competes:
    # it is validated before the first step, so the kept weights are never worse on val
    select = "val_psnr" if cfg.base is not None else "val_loss"
    if state.get("selected_by", select) != select:
        raise TrainingError(f"--resume: {ckpt_path} kept weights by {state['selected_by']} and "
                            f"this run would keep them by {select}; resume with the same "
                            "--from as the run that wrote it")
    state["selected_by"] = select
    budget_s = cfg.budget_min * 60 if cfg.budget_min else None
    session_start = time.time()  # the budget counts this invocation (a resume gets its own)
    stopped = False

    def time_to_stop() -> bool:
        """Cancel asked or budget spent; under torchrun rank 0 decides for every rank, so
        all leave the step loop at the same step."""
        now = bool((stop is not None and stop()) or
                   (budget_s is not None and time.time() - session_start > budget_s))
        return bool(env.broadcast(now)) if env.distributed else now

    def validate() -> dict[str, float]:
        model.eval()
        sums: dict[str, float] = {}
        count = 0
        with torch.no_grad():
            for i, batch in enumerate(val_dl):
                batch = _to(batch, device)
                vloss, logs = task.loss(model, batch)
                columns = task.samples(model, batch)
                scores = image_scores(columns)
                for k, v in {"loss": vloss.item(), **logs, **scores}.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
                if i == 0:
                    save_grid(sample_dir / f"epoch_{state['epoch']:03d}.png", columns)
        return {f"val_{k}": v / count for k, v in sums.items()}

    def score(logs: dict[str, float], fallback: float) -> float:
        """Lower is better: the val loss, or minus the val PSNR when fine-tuning."""
        if select == "val_psnr" and "val_psnr" in logs:
            return -logs["val_psnr"]
        return logs.get("val_loss", fallback)

    if cfg.base is not None and not cfg.resume and val_dl is not None and env.is_main:
        base_logs = validate()
        record = {"epoch": 0, "base": cfg.base.label, **base_logs, "elapsed_s": 0.0}
        state["history"].append(record)
        state["best"] = score(base_logs, math.inf)
        say(json.dumps(record), flush=True)
        if on_record:
            on_record(record)
        _save_weights(task, model, cfg, state, device, len(train_paths), len(val_paths), world)

    import importlib.util

    if importlib.util.find_spec("skimage") is not None:
        # imported now, not in the first validation: a slow first import there delayed the
        # epoch and made a Ctrl-C during it land inside module initialisation
        importlib.import_module("skimage.color")
    if hasattr(task, "on_train_start"):  # e.g. a decode setting of the base that training resets
        task.on_train_start(model)
    for epoch in range(state["epoch"], cfg.epochs):
        model.train()
        if cfg.base is not None:  # the base's network only (a GAN's fresh critic learns)
            freeze_batchnorm(task.export(model) if hasattr(task, "export") else model)
        total = steps if steps else len(train_dl)
        bar = tqdm(total=total, desc=f"{task.name} epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (progress and env.is_main), leave=False)
        running, n = 0.0, 0
        passes = 0
        if sampler is not None:
            sampler.set_epoch(epoch)
        it = iter(train_dl)
        for _ in range(total):
            if time_to_stop():
                stopped = True
                break
            try:
                batch = next(it)
            except StopIteration:
                passes += 1
                if sampler is not None:  # a fresh order for each extra pass of an epoch
                    sampler.set_epoch(epoch + 1_000_003 * passes)
                it = iter(train_dl)
                batch = next(it)
            batch = _to(batch, device)
            with torch.autocast(device.type, enabled=use_amp):
                loss, logs = task.loss(train_model, batch)
            if not torch.isfinite(loss):
                lr_now = optimizer.param_groups[0]["lr"]
                raise TrainingError(
                    f"training loss became {loss.item()} at step {state['step']}"
                    f"{f' on rank {rank}' if env.distributed else ''} (learning rate "
                    f"{lr_now:g}); try a lower --lr (e.g. {lr_now / 10:g}), check the data "
                    "for broken images, or --no-amp if mixed precision is on; the last "
                    "finished epoch's checkpoint is kept for --resume")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None and getattr(scheduler, "per_step", False):
                scheduler.step()
            state["step"] += 1
            running += loss.item()
            n += 1
            bar.set_postfix(loss=f"{running / n:.4f}")
            bar.update()
        bar.close()
        running, n = env.all_sum([running, float(n)])  # the loss over the global batch

        if n == 0 and stopped:  # stopped before this epoch's first step: nothing to judge
            break
        val_logs: dict[str, float] = {}
        if val_dl is not None:
            state["epoch"] = epoch + 1  # names the sample grid
            val_logs = validate()
        rngs = env.gather(rng_state(gen)) if env.distributed else None
        # every rank takes rank 0's validation and clock, so schedules and stops agree
        val_logs, elapsed = env.broadcast((val_logs, time.time() - start))
        val_loss = val_logs.get("val_loss", running / max(n, 1))
        val_score = score(val_logs, running / max(n, 1))
        if scheduler is not None and not getattr(scheduler, "per_step", False):
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_loss)
            else:
                scheduler.step()
        state["elapsed"] = elapsed
        record = {"epoch": epoch + 1, "train_loss": running / max(n, 1), **val_logs,
                  "lr": optimizer.param_groups[0]["lr"], "elapsed_s": round(state["elapsed"], 1)}
        warning = task.report(val_logs) if hasattr(task, "report") else None
        if warning:
            record["warning"] = warning
        state["history"].append(record)
        state["epoch"] = epoch + 1
        say(json.dumps(record), flush=True)
        if on_record:
            on_record(record)
        improved = val_score < state["best"]
        if improved:
            state["best"] = val_score
        if env.is_main:
            if improved:
                _save_weights(task, model, cfg, state, device, len(train_paths),
                              len(val_paths), world)
            ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict(), "state": state,
                    "task": task.state_dict() if hasattr(task, "state_dict") else None,
                    "rng": rng_state(gen), "world_size": world}
            if rngs is not None:
                ckpt["rng_ranks"] = rngs
            tmp = ckpt_path.with_suffix(".ckpt.part")
            torch.save(ckpt, tmp)
            os.replace(tmp, ckpt_path)
        env.barrier()  # the others wait for rank 0's files
        if stopped:
            say("stopped (cancelled or --minutes budget reached) after "
                f"{state['elapsed'] / 60:.1f} min; kept the best validated weights")
            break
        if cfg.time_limit_min and state["elapsed"] > cfg.time_limit_min * 60:
            say(f"time limit of {cfg.time_limit_min} min reached after epoch {epoch + 1}")
            break
    if env.is_main and not out.exists():  # no validation improvement recorded (e.g. zero epochs)
        _save_weights(task, model, cfg, state, device, len(train_paths), len(val_paths), world)
    env.barrier()
    return {"out": str(out), "best_val_loss": state["best"], "epochs": state["epoch"],
            "history": state["history"], "selected_by": select, "steps": state["step"],
            "seconds": round(state["elapsed"], 1)}


def _save_weights(task: TrainTask, model: torch.nn.Module, cfg: TrainConfig, state: dict,
                  device: torch.device, n_train: int, n_val: int, world_size: int = 1) -> None:
    meta = {
        "backend": task.name,
        "config": task.config_dict(),
        "training": {
            "data": [str(d) for d in cfg.data], "n_train_images": n_train,
            "n_val_images": n_val, "val_fraction": cfg.val_fraction, "split": cfg.split,
            "epochs_done": state["epoch"],
            "steps": state["step"], "batch_size": cfg.batch_size, "lr": cfg.lr,
            "seed": cfg.seed, "device": str(device), "processes": world_size,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "seconds": round(state["elapsed"], 1), "torch": torch.__version__,
            "selected_by": state.get("selected_by"),
            "extra": {k: v for k, v in cfg.extra.items()},
        },
        "metrics": state["history"][-1] if state["history"] else {},
        "history": state["history"],
        **({"base": {"weights": cfg.base.label, "sha256": cfg.base.sha256,
                     "weights_file": cfg.base.meta.get("weights_file")}}
           if cfg.base is not None else {}),
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    exported = task.export(model) if hasattr(task, "export") else model
    half = cfg.half or (cfg.base is not None and cfg.base.half)
    wts.save(cfg.out, exported.state_dict(), meta, half=half)
