"""Fine-tuning a backend from its weights on the user's own images ("teach it your images").

One path for the CLI (``colorplug train BACKEND --from default --data DIR --name NAME``), the
Python API (`finetune`) and napari's Train section: the base weights are loaded through the
backend exactly as ``get(backend, weights=...)`` loads them (checksum, strict load, made for
this backend), training starts from them with settings suited to tens of images, the base
competes on val before the first step (the kept weights are never worse there), and the
result is registered under NAME with a model card (`colorplug.user_weights`).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import InputError, WeightsError
from .loop import BaseWeights, TrainConfig

#: What fine-tuning changes from training from scratch, unless the user says otherwise:
#: a tenth of the backend's learning rate, short epochs (validation every 10 steps),
#: batches of 16 (CPU-sized), a fifth of the photos for val, a short warm-up.
FINETUNE_LR_FACTOR = 0.1
FINETUNE_STEPS_PER_EPOCH = 10
FINETUNE_BATCH_SIZE = 16
FINETUNE_VAL_FRACTION = 0.2
FINETUNE_WARMUP_STEPS = 20
#: Epoch cap when a time budget governs (the budget ends training first).
FINETUNE_MAX_EPOCHS = 100_000
#: Backends whose training can start from shipped weights.
FINETUNABLE = ("fusion", "cgan", "autoencoder", "guided")


def base_weights(backend: str, source: str = "default") -> BaseWeights:
    """The weights `source` names for `backend` ("default", a registered or user name, a
    file): loaded by the backend itself, so a file made for another backend or another
    architecture is refused as it would be for colorizing."""
    import colorplug

    if backend not in FINETUNABLE:
        raise InputError(f"--from: backend {backend!r} cannot be fine-tuned; fine-tuning "
                         f"works for {', '.join(FINETUNABLE)}")
    try:
        colorizer = colorplug.get(backend, weights=None if source == "default" else source,
                                  device="cpu")
    except WeightsError as exc:
        raise WeightsError(f"--from {source}: {exc}") from None
    model = getattr(colorizer, "model", None)
    meta = dict(getattr(colorizer, "metadata", {}) or {})
    if model is None or not meta.get("config"):
        raise WeightsError(f"--from {source}: these {backend} weights carry no network "
                           "configuration to fine-tune from")
    from ..weights import sha256_file

    weights_file = meta.get("weights_file")
    sha = sha256_file(weights_file) if weights_file else None
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return BaseWeights(state=state, meta=meta, label=source, sha256=sha,
                       half=bool(weights_file) and stored_half(weights_file))


def stored_half(weights_file: str | Path) -> bool:
    """Whether a .safetensors file stores its floating tensors as float16."""
    from safetensors import safe_open

    with safe_open(str(weights_file), framework="pt") as fh:
        for key in fh.keys():
            dtype = str(fh.get_slice(key).get_dtype())
            if dtype.startswith("F"):
                return dtype == "F16"
    return False


def trainer_for(backend: str) -> Any:
    """The backend's training module (``BackendInfo.trainer``)."""
    from ..registry import default_registry

    entry = default_registry().entry(backend)
    if not entry.info.trainer:
        raise InputError(f"backend {backend!r} has nothing to train")
    return importlib.import_module(entry.info.trainer)


def apply_finetune_defaults(args: argparse.Namespace, given: set[str]) -> None:
    """Fine-tuning settings for the flags the user did not give (see the constants)."""
    if "--lr" not in given:
        args.lr = args.lr * FINETUNE_LR_FACTOR
    if "--steps-per-epoch" not in given:
        args.steps_per_epoch = FINETUNE_STEPS_PER_EPOCH
    if "--batch-size" not in given:
        args.batch_size = FINETUNE_BATCH_SIZE
    if "--val-fraction" not in given:
        args.val_fraction = FINETUNE_VAL_FRACTION
    if "--epochs" not in given and getattr(args, "minutes", None):
        args.epochs = FINETUNE_MAX_EPOCHS
    if hasattr(args, "warmup") and "--warmup" not in given:
        args.warmup = FINETUNE_WARMUP_STEPS


def run_folder(name: str) -> Path:
    """Where a named fine-tuning run keeps its working files (checkpoint, samples)."""
    from ..weights import user_weights_dir

    return user_weights_dir().parent / "runs" / name


def data_fingerprint(data: Sequence[str | Path]) -> dict[str, Any]:
    """How many images the data folders hold and one SHA-256 over their names and bytes,
    so a model card says exactly what it was taught on."""
    from .data import collect

    h = hashlib.sha256()
    paths = sorted(collect(data), key=lambda p: p.name)
    for p in paths:
        h.update(p.name.encode() + b"\0")
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return {"count": len(paths), "sha256": h.hexdigest()}


def model_card(backend: str, cfg: TrainConfig, summary: dict[str, Any],
               interrupted: bool = False) -> dict[str, Any]:
    """What a user's weights were made from and how well they validated."""
    import colorplug

    history = summary.get("history", [])
    base_record = next((r for r in history if r.get("epoch") == 0), {})
    if summary.get("selected_by", "val_psnr") == "val_psnr":
        scored = [r for r in history if "val_psnr" in r]
        best = max(scored, key=lambda r: r["val_psnr"]) if scored else {}
    else:  # kept by val loss (training from scratch)
        scored = [r for r in history if "val_loss" in r]
        best = min(scored, key=lambda r: r["val_loss"]) if scored else {}
    keys = ("val_psnr", "val_delta_e")
    return {
        "backend": backend,
        "base": {"weights": cfg.base.label if cfg.base else None,
                 "sha256": cfg.base.sha256 if cfg.base else None,
                 **{k: base_record[k] for k in keys if k in base_record}},
        "data": {"folders": [str(Path(d).resolve()) for d in cfg.data],
                 **data_fingerprint(cfg.data)},
        "val": {"folders": [str(Path(d).resolve()) for d in cfg.val_data]} if cfg.val_data
        else {"carved": cfg.val_fraction},
        "kept": {"epoch": best.get("epoch"), **{k: best[k] for k in keys if k in best}},
        "training": {"steps": summary.get("steps"), "seconds": summary.get("seconds"),
                     "epochs": summary.get("epochs"), "lr": cfg.lr,
                     "batch_size": cfg.batch_size, "budget_min": cfg.budget_min,
                     "device": cfg.device, "interrupted": interrupted},
        "colorplug": colorplug.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class FineTuneResult:
    """What `finetune` made: the registered name (if any), the weights file, the summary."""

    name: str | None
    path: Path
    summary: dict[str, Any]
    card: dict[str, Any]


def register(name: str, backend: str, cfg: TrainConfig, summary: dict[str, Any], *,
             interrupted: bool = False, replace: bool = False) -> Any:
    """Store a run's kept weights in the user's registry under `name` with its card
    (`replace`: a resumed run replaces the entry its interrupted part registered)."""
    from ..user_weights import store

    return store(name, cfg.out, model_card(backend, cfg, summary, interrupted),
                 overwrite=replace)


def finetune(backend: str, data: Sequence[str | Path] | str | Path, *, name: str | None = None,
             out: str | Path | None = None, base: str = "default", minutes: float = 5.0,
             val: Sequence[str | Path] | None = None, device: str = "auto", seed: int = 0,
             options: Sequence[str] = (), progress: bool = True,
             on_record: Callable[[dict], None] | None = None,
             stop: Callable[[], bool] | None = None) -> FineTuneResult:
    """Fine-tune `backend` from `base` weights on colour images in `data` for `minutes`,
    keep the weights that validate best and, with `name`, register them (use them as
    ``get(backend, weights=name)``). `options` are the backend's own training flags
    (``["--lr", "1e-4"]``); `on_record`/`stop` serve a GUI's progress and Cancel."""
    from ..user_weights import check_name, find, taken_by_others
    from .loop import fit

    if isinstance(data, (str, Path)):
        data = [data]
    if name is None and out is None:
        raise InputError("fine-tuning needs a name to register the result under (or an "
                         "output file)")
    if name is not None:
        check_name(name)
        clash = taken_by_others(name)
        if clash or find(name) is not None:
            raise WeightsError(f"--name {name}: {clash or f'your weights {name!r} exist'}; "
                               "choose another name")
    trainer = trainer_for(backend)
    parser = argparse.ArgumentParser(prog=f"colorplug train {backend}", allow_abbrev=False)
    for flag, kind, default in (("--lr", float, 1e-3), ("--batch-size", int, 64),
                                ("--epochs", int, 10), ("--steps-per-epoch", int, None),
                                ("--val-fraction", float, 0.1)):
        parser.add_argument(flag, type=kind, default=default)
    trainer.add_arguments(parser)
    try:
        args = parser.parse_args(list(options))
    except SystemExit:
        raise InputError(f"options {list(options)!r} are not {backend}'s training flags "
                         f"(colorplug train {backend} --help)") from None
    args.minutes = minutes
    apply_finetune_defaults(args, {o.split("=")[0] for o in options if o.startswith("--")})
    target = Path(out) if out is not None else run_folder(name) / f"{name}.safetensors"
    if out is not None and (target.exists() or target.with_suffix(".ckpt").exists()):
        raise InputError(f"out={str(target)!r} or its checkpoint exists; give a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(data=[str(d) for d in data], out=target, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=seed,
                      val_fraction=args.val_fraction, device=device,
                      steps_per_epoch=args.steps_per_epoch, budget_min=minutes,
                      base=base_weights(backend, base),
                      val_data=[str(v) for v in val] if val else None,
                      extra={k: v for k, v in vars(args).items()})
    summary = fit(trainer.make_task(args), cfg, progress=progress, on_record=on_record,
                  stop=stop)
    interrupted = bool(stop is not None and stop())
    card = model_card(backend, cfg, summary, interrupted)
    if name is not None:
        entry = register(name, backend, cfg, summary, interrupted=interrupted)
        return FineTuneResult(name, entry.path, summary, entry.card)
    return FineTuneResult(None, target, summary, card)
