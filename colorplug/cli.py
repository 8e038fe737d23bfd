"""The ``colorplug`` command: list, plugins, info, colorize, train, eval, gimp, weights,
export."""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .cli_shared import (backend_and_options, colorize_planes, download_answer, err,
                         load_input, parse_range)
from .errors import ColorplugError, WeightsError
from .outputs import ExistingPolicy, PlanError, plan_outputs
from .runner import run_plan

SAMPLE = Path(__file__).resolve().parent / "samples" / "astronaut_gray.png"
#: Existing outputs named one by one before the rest are summarised in one line.
EXISTING_SHOWN = 5
#: Flags whose value may start with '-' (a negative number), which argparse would take
#: for another flag: ``--intensity-range -1000,2000`` is read as ``--intensity-range=...``.
NEGATIVE_VALUE_FLAGS = ("--intensity-range",)


# --------------------------------------------------------------------- list / plugins
def cmd_list(args: argparse.Namespace) -> int:
    from .registry import default_registry

    reg = default_registry()
    width = max([len(e.name) for e in reg.entries()] + [12]) + 2
    print(f"{'backend':<{width}}{'from':<28}{'input':<12}description")
    for e in reg.entries():
        needs = ("reference" if e.info.needs_reference else
                 "hints" if e.info.needs_hints else
                 "(hints)" if e.info.supports_hints else
                 "(reference)" if e.info.accepts_reference else "-")
        print(f"{e.name:<{width}}{e.distribution:<28}{needs:<12}{e.info.description}")
    if reg.failures:
        print(f"\n{len(reg.failures)} plugin(s) failed to load; see `colorplug plugins`")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from .registry import default_registry

    reg = default_registry()
    print("loaded:")
    for p in reg.plugins:
        print(f"  {p.plugin:<20} {p.distribution:<28} {p.load_seconds:6.2f} s  "
              f"backends: {', '.join(p.backends) or '-'}")
    if reg.disabled:
        print("disabled (COLORPLUG_DISABLE_PLUGINS): " + ", ".join(reg.disabled))
    if reg.failures:
        print("failed:")
        for f in reg.failures:
            print(f"  {f.plugin:<20} {f.distribution:<28} {f.load_seconds:6.2f} s  "
                  f"{f.stage}: {f.error}")
    return 1 if reg.failures else 0


def cmd_info(args: argparse.Namespace) -> int:
    from .registry import default_registry

    e = default_registry().entry(args.name)
    info = e.info
    print(f"name:             {info.name}")
    print(f"description:      {info.description}")
    print(f"from:             {e.distribution} (plugin {e.plugin})")
    print(f"needs reference:  {info.needs_reference}")
    print(f"accepts reference:{' ' + str(info.accepts_reference)}")
    print(f"supports hints:   {info.supports_hints}")
    print(f"needs hints:      {info.needs_hints}")
    print(f"working size:     {info.working_size or 'any'}")
    print(f"colour space:     {info.color_space}")
    print(f"trainable:        {'yes: colorplug train ' + info.name if info.trainer else 'no'}")
    from .cache import is_cached, listing
    from .protocol import COMMON_OPTIONS
    from .weights import SHIPPED_DIR, read_metadata

    files = [f"{spec.public_name} (shipped: {SHIPPED_DIR / spec.filename})"
             for spec in (item.spec for item in listing() if item.shipped)
             if read_metadata(SHIPPED_DIR / spec.filename).get("backend") == info.name]
    declared = info.extra.get("weights")
    if declared:
        spec = next((item.spec for item in listing() if item.spec.public_name == declared), None)
        state = "cached" if spec is not None and is_cached(spec) else \
            f"not cached: colorplug weights fetch {declared}"
        files.append(f"{declared} ({state})")
    print("weights:          " + ("; ".join(files) if files else "none (training-free)"))
    from .advice import automatic

    if automatic(info) and files:
        print("good for:         photographs (what its weights learnt colour from); for CT, MR "
              "or fluorescence give a reference or hints, or fine-tune: colorplug train "
              f"{info.name} --from default --data DIR --name NAME" if info.trainer else
              "good for:         photographs (what its weights learnt colour from); for CT, "
              "MR or fluorescence give a reference or hints")
    own = info.options
    print("options:          " + ("(not declared by the plugin)" if own is None else
                                  "-" if not own else ""))
    for key, text in {**(own or {}), **COMMON_OPTIONS}.items():
        print(f"  {key:<20} {text}")
    return 0


# --------------------------------------------------------------------------- colorize


def _check_output_dtype(dtype: str, suffixes: set[str]) -> None:
    from .image.codecs import EIGHT_BIT_ONLY

    if dtype == "float32" and suffixes - {".tif", ".tiff"}:
        raise PlanError("--output-dtype float32 needs TIFF outputs (-o FILE.tif, or "
                        "--output-format tif for a folder); PNG holds at most 16 bits")
    if dtype == "uint16" and suffixes & EIGHT_BIT_ONLY:
        raise PlanError(f"--output-dtype uint16 needs PNG or TIFF outputs; "
                        f"{', '.join(sorted(suffixes & EIGHT_BIT_ONLY))} hold 8 bits")


def _output_name(src: Path, suffix: str, args: argparse.Namespace) -> str:
    """An input's output file name in a folder: DICOM stacks become TIFF stacks (or a
    Secondary Capture with --dicom-out), OME-TIFF stays OME-TIFF."""
    from .image import medical

    if medical.is_ome_tiff(src):
        return src.name[: -len(next(s for s in medical.OME_SUFFIXES
                                    if src.name.lower().endswith(s)))] + ".ome.tif"
    if medical.is_dicom(src):
        if args.dicom_out:
            return src.stem + ".dcm"
        if medical.dicom_frames(src) > 1 and suffix not in (".tif", ".tiff"):
            return src.stem + ".tif"
    return src.stem + suffix


def cmd_colorize(args: argparse.Namespace) -> int:
    """``colorplug colorize``, with the command's answer to 'download weights?' for every
    backend it builds."""
    from .cache import downloads_asked

    with downloads_asked(download_answer(args)):
        return _colorize(args)


def _colorize(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from . import get
    from .files import clean_stale_parts, write_bytes_atomic
    from .image import IMAGE_SUFFIXES, encode_image, find_images, medical, read_image
    from .video.cli import check_image_args, is_video_job, run_video

    if is_video_job(args):  # a video or an image sequence (colorplug/video/cli.py)
        return run_video(args)
    check_image_args(args)
    say = (lambda *a, **k: None) if args.quiet else print
    inputs = [Path(p) for p in args.inputs] + ([SAMPLE] if args.sample else [])
    if not inputs:
        err("no input files given (pass files or folders, or --sample)")
        return 2
    policy = ExistingPolicy.from_flags(overwrite=args.overwrite,
                                       skip_existing=args.skip_existing)
    if args.batch_size < 1:
        raise PlanError(f"--batch-size must be at least 1; got {args.batch_size}")
    missing = [p for p in inputs if not p.exists()]
    present = [p for p in inputs if p.exists()]
    if not present:
        err("no input found: " + ", ".join(map(str, missing)))
        return 2
    out_suffixes = IMAGE_SUFFIXES | ({".dcm"} if args.dicom_out else set())
    find = lambda d: find_images(d, IMAGE_SUFFIXES | medical.DICOM_SUFFIXES)  # noqa: E731
    name_for = lambda src, suffix: _output_name(src, suffix, args)  # noqa: E731
    if args.scheduler:  # zarr / TIFF stacks become NAME.zarr (colorplug/dask_cli.py)
        from .dask_cli import check_scheduler, stack_planning

        check_scheduler(args.scheduler)
        find, name_for, out_suffixes = stack_planning(find, name_for, out_suffixes)
    plan = plan_outputs(present, Path(args.output), find=find, suffixes=out_suffixes,
                        folder_suffix="." + args.output_format, name_for=name_for)
    _check_output_dtype(args.output_dtype, {item.target.suffix.lower() for item in plan
                                            if item.target.suffix.lower() != ".dcm"})
    name, options = backend_and_options(args.backend)
    if args.gallery:  # a backend option (exemplar: references when none is given)
        if not Path(args.gallery).is_dir():
            err(f"--gallery {args.gallery}: no such folder (give a folder of colour photos)")
            return 2
        options["gallery"] = args.gallery
    colorizer = get(name, device=args.device, output_dtype=args.output_dtype,
                    intensity_range=parse_range(args.intensity_range), **options)
    if colorizer.info.needs_reference and not args.reference:
        err(f"backend {colorizer.info.name!r} needs a colour reference image: pass "
             "--reference FILE")
        return 2
    if colorizer.info.needs_hints and not args.hints:
        err(f"backend {colorizer.info.name!r} needs colour hints: pass --hints FILE")
        return 2
    reference = read_image(args.reference) if args.reference else None
    hints = read_image(args.hints) if args.hints else None
    clean_stale_parts({item.target.parent for item in plan})

    failures = [(p, "no such file or folder") for p in missing]
    existing: list[Path] = []
    skipped = 0
    todo = []
    for item in plan:
        if item.target.exists() and policy is not ExistingPolicy.OVERWRITE:
            if policy is ExistingPolicy.SKIP:
                skipped += 1
            else:
                existing.append(item.target)
        else:
            todo.append(item)
    overwrite = policy is ExistingPolicy.OVERWRITE
    bar = tqdm(total=len(todo), desc=f"colorize ({colorizer.info.name})", unit="img",
               disable=args.quiet or len(todo) < 2 or bool(args.scheduler))
    run = run_plan
    if args.scheduler:  # the same plan as dask tasks (colorplug/dask_cli.py)
        from .dask_cli import scheduled_runner

        run = scheduled_runner(args, colorizer=colorizer, overwrite=overwrite)
    report = run(
        todo, load=lambda item: load_input(item, args),
        colorize_batch=lambda images: colorizer.colorize_batch_deferred(
            images, reference=reference, hints=hints),
        colorize_other=lambda item, planes: colorize_planes(colorizer, item, planes, args,
                                                             reference, hints),
        encode=lambda item, rgb: encode_image(rgb, item.target.suffix),
        write=lambda item, data: write_bytes_atomic(item.target, data, overwrite=overwrite),
        batch_size=args.batch_size, progress=lambda: bar.update())
    bar.close()
    done = report.done
    existing += report.existing
    failures += report.failures
    if not args.quiet:
        for src, message in report.warnings:
            print(f"colorplug: warning: {src}: {message}", file=sys.stderr)
    shown = existing if len(existing) <= EXISTING_SHOWN + 1 else existing[:EXISTING_SHOWN]
    for target in shown:
        print(f"colorplug: exists, left alone: {target} (use --overwrite to replace it or "
              "--skip-existing to skip it)", file=sys.stderr)
    if len(shown) < len(existing):
        print(f"colorplug: ... and {len(existing) - len(shown)} more existing outputs left "
              "alone (use --overwrite to replace them or --skip-existing to skip them)",
              file=sys.stderr)
    for src, why in failures:
        print(f"colorplug: failed: {src}: {why}", file=sys.stderr)
    where = plan[0].target if len(plan) == 1 else args.output
    counts = [f"{done} colorized"] + ([f"{skipped} skipped"] if skipped else []) + \
        ([f"{len(existing)} existing"] if existing else []) + [f"{len(failures)} failed"]
    say(f"{', '.join(counts)} -> {where}")
    return 1 if failures or existing else 0


# ------------------------------------------------------------------------------ train
def cmd_train(argv: Sequence[str]) -> int:
    from .gl_guard import guard_triton
    from .registry import default_registry

    guard_triton()  # training imports torch.optim, hence triton (see colorplug.gl_guard)

    pre = argparse.ArgumentParser(prog="colorplug train", add_help=False)
    pre.add_argument("backend", nargs="?")
    known, _ = pre.parse_known_args(argv)
    if not known.backend or known.backend.startswith("-"):
        trainable = [e.name for e in default_registry().entries() if e.info.trainer]
        usage = (f"usage: colorplug train BACKEND --data DIR --out FILE [options]; trainable "
                 f"backends: {', '.join(trainable)} (colorplug train BACKEND --help lists a "
                 "backend's options)")
        if set(argv) & {"-h", "--help"}:
            print(usage)
            return 0
        err(usage)
        return 2
    entry = default_registry().entry(known.backend)
    if not entry.info.trainer:
        err(f"backend {entry.name!r} has nothing to train")
        return 2
    trainer = importlib.import_module(entry.info.trainer)
    # no abbreviated flags: fine-tuning defaults apply to the flags the user did not type
    p = argparse.ArgumentParser(prog=f"colorplug train {entry.name}", allow_abbrev=False,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("backend")
    p.add_argument("--data", nargs="+", required=True, help="folders or files of colour photos")
    p.add_argument("--out", type=Path, default=None,
                   help="weights file (.safetensors); optional with --name")
    p.add_argument("--from", dest="from_weights", default=None, metavar="WEIGHTS",
                   help="fine-tune from these weights: 'default', a name from `colorplug "
                   "weights list` (yours included) or a .safetensors file of this backend")
    p.add_argument("--name", default=None,
                   help="register the result as your weights NAME (use: -b 'BACKEND?weights="
                   "NAME', get(BACKEND, weights=NAME); `colorplug weights list` shows it)")
    p.add_argument("--minutes", type=_bounded(float, 0.0, strict=True), default=None,
                   help="time budget: stop within a step of it, validate, keep the best")
    p.add_argument("--val", nargs="+", default=None, metavar="DIR",
                   help="validation photos from these folders (default: a part of --data)")
    p.add_argument("--epochs", type=_bounded(int, 1), default=10)
    p.add_argument("--batch-size", type=_bounded(int, 1), default=64)
    p.add_argument("--lr", type=_bounded(float, 0.0, strict=True), default=1e-3)
    p.add_argument("--steps-per-epoch", type=_bounded(int, 1), default=None)
    p.add_argument("--val-fraction", type=_bounded(float, 0.0, 1.0, strict=True), default=0.1)
    p.add_argument("--split", default=None, help="a fixed split (e.g. photos_v1, or a split "
                   "JSON): train on its train part, validate on val, never read test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=_bounded(int, 0), default=0)
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--resume", action="store_true", help="continue from OUT's .ckpt")
    p.add_argument("--overwrite", action="store_true",
                   help="start over, replacing existing weights and checkpoint at --out")
    p.add_argument("--time-limit", type=_bounded(float, 0.0, strict=True), default=None,
                   help="minutes; stop after the "
                   "epoch that passes it")
    p.add_argument("--half", action="store_true", help="store weights as float16")
    p.add_argument("--quiet", action="store_true")
    trainer.add_arguments(p)
    args = p.parse_args(argv)
    problem = _finetune_args_problem(entry.name, args)
    if problem:
        p.error(problem)
    if args.from_weights:
        from .train.finetune import apply_finetune_defaults

        apply_finetune_defaults(args, {a.split("=")[0] for a in argv if a.startswith("--")})
    from .train.distributed import CollectiveError, session

    # under torchrun every process runs this; rank 0 judges the output files for all of them
    # (other nodes need not see its disk) and alone prints what happens
    try:
        with session(args.device) as env:
            problem = env.broadcast(_train_output_problem(args) if env.is_main else None)
            if problem:
                raise CollectiveError(problem)
            return _run_training(trainer, args, env)
    except CollectiveError as exc:
        from .train.distributed import env_world

        if env_world()[1] == 0:
            err(str(exc))
        return 2


def _bounded(kind: type, low: float, high: float | None = None, *,
             strict: bool = False) -> Any:
    """An argparse type: a finite `kind` at least `low` (above it if `strict`), at most /
    below `high`; anything else is the flag's own error (exit 2), never a silent run."""
    import math

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from None
        ok = math.isfinite(value) and (value > low if strict else value >= low)
        ok = ok and (high is None or (value < high if strict else value <= high))
        if not ok:
            side = "above" if strict else "at least"
            limit = f"{side} {low:g}" + (f" and {'below' if strict else 'at most'} {high:g}"
                                         if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be {limit}; got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _finetune_args_problem(backend: str, args: argparse.Namespace) -> str | None:
    """Why --out/--name/--from cannot go together as given, if so (the flag's own error),
    and where a named run keeps its files when --out is not given."""
    from .train.finetune import FINETUNABLE, run_folder
    from .user_weights import check_name, find, taken_by_others

    if args.name is not None:
        try:
            check_name(args.name)
        except WeightsError as exc:
            return str(exc)
        clash = taken_by_others(args.name)
        if clash:
            return f"--name {args.name}: {clash}; choose another name"
        if find(args.name) is not None and not args.resume:
            return (f"--name {args.name}: your weights {args.name!r} exist; choose another "
                    f"name or `colorplug weights remove {args.name}` first")
        if args.out is None:
            args.out = run_folder(args.name) / f"{args.name}.safetensors"
    if args.out is None:
        return "give --out FILE (a .safetensors file) or --name NAME (your weights registry)"
    if args.from_weights and backend not in FINETUNABLE:
        return (f"--from: backend {backend!r} cannot be fine-tuned; fine-tuning works for "
                f"{', '.join(FINETUNABLE)}")
    if args.split and args.val:
        return "--split and --val exclude each other (the split names its own val part)"
    return None


def _train_output_problem(args: argparse.Namespace) -> str | None:
    """Why `colorplug train` must not start with these --out/--resume/--overwrite, if so."""
    ckpt = args.out.with_suffix(".ckpt")
    if args.resume and args.overwrite:
        return "--resume and --overwrite exclude each other"
    if args.resume and not ckpt.is_file():
        return (f"--resume: no checkpoint {ckpt} to continue from (it is written beside --out "
                "after each epoch); run without --resume to start")
    existing = [p for p in (args.out, ckpt) if p.exists()]
    if existing and not (args.resume or args.overwrite):
        return (f"{' and '.join(map(str, existing))} exist; pass --resume to continue that run "
                "or --overwrite to start over and replace them")
    return None


def _run_training(trainer: Any, args: argparse.Namespace, env: Any) -> int:
    from .errors import TrainingError
    from .train import TrainConfig, fit

    ckpt = args.out.with_suffix(".ckpt")
    base = None
    if args.from_weights:
        from .train.finetune import base_weights

        base = base_weights(args.backend, args.from_weights)
    cfg = TrainConfig(data=args.data, out=args.out, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      val_fraction=args.val_fraction, device=args.device, amp=not args.no_amp,
                      workers=args.workers, resume=args.resume,
                      steps_per_epoch=args.steps_per_epoch, time_limit_min=args.time_limit,
                      half=args.half, split=args.split, base=base, val_data=args.val,
                      budget_min=args.minutes,
                      extra={k: v for k, v in vars(args).items() if k not in ("data", "out")})
    started = time.time()
    try:
        summary = fit(trainer.make_task(args), cfg, progress=not args.quiet)
    except TrainingError as exc:
        err(str(exc))
        return 1
    except KeyboardInterrupt:
        hint = (f"; the last finished epoch is in {ckpt}: run the same command with --resume "
                "to continue") if ckpt.is_file() else ""
        # only weights this run wrote (a previous run's file is not this run's result)
        ours = args.out.is_file() and args.out.stat().st_mtime >= started - 1
        if env.is_main and args.name and ours:
            from .train.finetune import register

            state = read_summary(args.out)
            entry = register(args.name, args.backend, cfg, state, interrupted=True,
                             replace=args.resume)
            err(f"interrupted; kept the best validated weights so far as your weights "
                f"{entry.name!r} ({entry.path})" + hint)
        else:
            err("interrupted" + hint)
        return 130
    if env.is_main:
        if summary.get("selected_by") == "val_psnr":
            print(f"weights written to {summary['out']} (best validation PSNR "
                  f"{-summary['best_val_loss']:.2f} dB after {summary['epochs']} epochs)")
        else:
            print(f"weights written to {summary['out']} (best validation loss "
                  f"{summary['best_val_loss']:.5f} after {summary['epochs']} epochs)")
        if args.name:
            from .train.finetune import register

            entry = register(args.name, args.backend, cfg, summary, replace=args.resume)
            print(f"registered as your weights {entry.name!r}: use -b '{args.backend}?weights="
                  f"{entry.name}' or get({args.backend!r}, weights={entry.name!r})")
    return 0


def read_summary(weights_file: Path) -> dict[str, Any]:
    """A training summary rebuilt from a weights file's metadata (after an interruption)."""
    from .weights import read_metadata

    meta = read_metadata(weights_file)
    training = meta.get("training", {})
    return {"history": meta.get("history") or [meta.get("metrics", {})],
            "steps": training.get("steps"), "seconds": training.get("seconds"),
            "epochs": training.get("epochs_done"),
            "selected_by": training.get("selected_by") or "val_loss"}


# ------------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from . import evaluate as ev
    from .image import read_image

    if args.video:
        return cmd_eval_video(args)
    if not args.data:
        err("eval needs --data (colour photos) or --video (a clip)")
        return 2
    if args.out:
        out = Path(args.out)
        if out.exists() and not out.is_dir():  # found now, not after the whole evaluation
            err(f"--out {out}: a file, not a folder; give a folder for the report")
            return 2
        report = [out / n for n in ("metrics.csv", "metrics.json", "contact_sheet.png")]
        taken = [p for p in report if p.exists()]
        if taken and not args.overwrite:
            for p in taken:
                print(f"colorplug: exists, left alone: {p} (use --overwrite to replace the "
                      "report)", file=sys.stderr)
            return 1
    names = None
    if args.list:
        try:
            text = Path(args.list).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            err(f"--list {args.list}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
            return 2
        names = {line.strip() for line in text.splitlines() if line.strip()}
    if args.split:
        from .train.split import parse_split_spec

        split, part = parse_split_spec(args.split)
        part_names = set(split.names(part))
        names = part_names if names is None else names & part_names
    photos = ev.load_photos(args.data, names=names, max_side=args.max_side, limit=args.limit)
    if not photos:
        err(f"no colour photos found in {' '.join(map(str, args.data))}")
        return 2
    backends = args.backend or ["gray"]
    reference = read_image(args.reference) if args.reference else None
    references = None
    if args.reference_pairs:
        import csv

        try:
            with open(args.reference_pairs, newline="") as fh:
                pairs = [row for row in csv.reader(fh) if row and row[0] != "image"]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            err(f"--reference-pairs {args.reference_pairs}: cannot read it "
                f"({getattr(exc, 'strerror', None) or exc})")
            return 2
        wrong = [i for i, row in enumerate(pairs, 1) if len(row) != 2]
        if wrong:
            err(f"--reference-pairs {args.reference_pairs}: each row holds two columns, "
                f"image,reference; row {wrong[0]} holds {len(pairs[wrong[0] - 1])}")
            return 2
        references = {Path(img).name: read_image(ref) for img, ref in pairs}
    bar = tqdm(total=len(photos) * len(backends), desc="eval", disable=args.quiet)

    def tick(done: int, total: int) -> None:
        bar.update(done - bar.n)

    rows, summary, outputs = ev.evaluate(backends, photos, device=args.device,
                                         reference=reference, references=references,
                                         self_reference=args.self_reference, progress=tick,
                                         simulated_hint_points=args.simulated_hints,
                                         hints_seed=args.hints_seed)
    bar.close()
    print(ev.format_table(summary))
    if args.out:
        meta = {"data": [str(d) for d in args.data], "list": args.list, "split": args.split,
                "max_side": args.max_side, "backends": backends,
                "self_reference": args.self_reference, "reference": args.reference,
                "reference_pairs": args.reference_pairs,
                "simulated_hints": args.simulated_hints, "hints_seed": args.hints_seed}
        ev.write_report(args.out, rows, summary, ev.contact_sheet(photos, outputs), meta)
        print(f"report written to {args.out}/ (metrics.csv, metrics.json, contact_sheet.png)")
    return 0


def cmd_eval_video(args: argparse.Namespace) -> int:
    """``colorplug eval --video CLIP``: flicker and accuracy per backend x temporal mode."""
    import json

    from tqdm.auto import tqdm

    from . import default_backend
    from .evaluate import json_safe
    from .files import write_bytes_atomic
    from .video.evaluate import evaluate_video, format_video_table

    target = Path(args.out) / "video_metrics.json" if args.out else None
    if target is not None and target.exists() and not args.overwrite:
        print(f"colorplug: exists, left alone: {target} (use --overwrite to replace the "
              "report)", file=sys.stderr)
        return 1
    bar = tqdm(desc="eval --video (frames)", disable=args.quiet)
    results = evaluate_video(args.video, truth=args.truth, backends=args.backend or
                             [default_backend()], modes=args.temporal or ["off"],
                             device=args.device, progress=lambda n: bar.update(1))
    bar.close()
    print(format_video_table(results))
    if target is not None:
        report = {"video": args.video, "truth": args.truth, "results": results}
        write_bytes_atomic(target, json.dumps(json_safe(report), indent=2,
                                           allow_nan=False).encode(), overwrite=True)
        print(f"report written to {target}")
    return 0


# ----------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    """``colorplug export BACKEND --format onnx -o FILE``: the backend's network as one
    ONNX file for deployment (what ``runtime="onnx"`` runs; pre- and post-processing are
    not in it)."""
    from .cache import downloads_asked

    with downloads_asked(download_answer(args)):
        return _export(args)


def _export(args: argparse.Namespace) -> int:
    from . import get
    from .errors import InputError, OutputError
    from .runtimes import export, require

    target = Path(args.output)
    if (target.exists() or target.is_symlink()) and not args.overwrite:
        raise OutputError(f"{str(target)!r} exists; use --overwrite to replace it")
    name, options = backend_and_options(args.backend)
    if "runtime" in options:
        raise InputError("colorplug export exports the torch network; leave out the "
                         f"'runtime' option (got runtime={options['runtime']!r})")
    require(None, export=True)  # before the network is loaded
    weights = {"weights": args.weights} if args.weights else {}
    colorizer = get(name, device="cpu", **weights, **options)
    make_graph = getattr(colorizer, "onnx_graph", None)
    if make_graph is None:
        raise InputError(f"backend {colorizer.info.name!r} cannot be exported: it runs its "
                         "network with torch only (backends offering the 'runtime' option "
                         "can be exported)")
    graph = make_graph()
    try:
        export(graph, target, overwrite=args.overwrite)
    except FileExistsError:
        raise OutputError(f"{str(target)!r} exists; use --overwrite to replace it") from None
    dynamic = graph.dynamic_shapes or {}
    shapes = []
    for i, (label, tensor) in enumerate(zip(graph.input_names, graph.inputs)):
        axes = list(dynamic.values())[i] if i < len(dynamic) else {}
        dims = ["?" if k in axes else str(n) for k, n in enumerate(tensor.shape)]
        shapes.append(f"{label} ({'x'.join(dims)})")
    if not args.quiet:
        print(f"exported {colorizer.info.name}'s network to {target}: inputs "
              f"{', '.join(shapes)} float32 ('?': any size), outputs "
              f"{', '.join(graph.output_names)}")
    return 0


# ------------------------------------------------------------------------------- gimp
def cmd_gimp(args: argparse.Namespace) -> int:
    from . import gimp_install

    gimp_dir = Path(args.gimp_dir) if args.gimp_dir else None
    if args.action == "install":
        target = gimp_install.install(gimp_dir)
        print(f"installed the GIMP plug-in: {target}\n(colorplug runs with {sys.executable}; "
              "restart GIMP, then Filters > Colors > Colorize (colorplug)...)")
    else:
        removed = gimp_install.uninstall(gimp_dir)
        print(f"removed {removed}" if removed else "the GIMP plug-in was not installed")
    return 0


# ------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="colorplug",
                                description="Colorize grayscale images with pluggable backends.")
    p.add_argument("--version", action="version", version=f"colorplug {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list backends and where each comes from")
    sub.add_parser("plugins", help="loaded, disabled and failed plugins")
    s = sub.add_parser("info", help="details of one backend")
    s.add_argument("name")
    s = sub.add_parser("colorize", help="colorize image files and folders, videos and image "
                       "sequences")
    s.add_argument("inputs", nargs="*", help="image files or folders (searched recursively); "
                   "a video file or a frame pattern (frame_%%05d.png)")
    s.add_argument("-o", "--output", required=True,
                   help="output file (one input; its suffix picks the format) or folder (a "
                   "name without a suffix; files keep their names and relative paths)")
    s.add_argument("--sample", action="store_true", help="also colorize the bundled sample")
    s.add_argument("-b", "--backend", default=None,
                   help="backend name (default: best shipped); NAME?key=value&... passes "
                   "backend options, e.g. 'fusion?working_size=512' (see colorplug info NAME)")
    s.add_argument("--reference", action="append", help="colour reference image (backends "
                   "that use one); for video repeatable: keyframe references")
    s.add_argument("--hints", help="colour hints image (backends that take hints)")
    s.add_argument("--gallery", metavar="DIR",
                   help="folder of colour photos to take references from when no --reference "
                   "is given (exemplar; default: its shipped gallery)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--output-dtype", default="uint8", choices=["uint8", "uint16", "float32"],
                   help="uint16: PNG or TIFF; float32: TIFF")
    s.add_argument("--output-format", default="png", choices=["png", "tif", "jpg", "webp"],
                   help="format of the files written into an output folder (default png)")
    s.add_argument("--intensity-range", default=None, help="LO,HI, 'dtype' or 'percentile'")
    s.add_argument("--overwrite", action="store_true", help="replace existing output files")
    s.add_argument("--skip-existing", action="store_true",
                   help="leave existing outputs alone and count them as skipped (exit 0), "
                   "e.g. to resume an interrupted folder")
    s.add_argument("--batch-size", type=int, default=8,
                   help="images colorized together (memory vs speed)")
    s.add_argument("--dicom-out", action="store_true",
                   help="DICOM inputs: write an RGB Secondary Capture (.dcm) with new UIDs and "
                   "the source's patient/study tags (needs the medical extra)")
    s.add_argument("--allow-huge-images", action="store_true",
                   help="read images over Pillow's decompression-bomb limit (~179 MP)")
    s.add_argument("--download", action="store_true",
                   help="download the backend's weights if they are not in the cache yet "
                   "(the zoo's published models; without it colorplug asks on a terminal "
                   "and refuses elsewhere, saying how to get them)")
    s.add_argument("--scheduler", default=None,
                   help="run on dask: threads, processes or a scheduler address "
                   "(tcp://HOST:PORT); a task per file, zarr / TIFF stacks to NAME.zarr "
                   "(needs the dask extra; see docs/scale-out.md)")
    s.add_argument("--scheduler-wait", type=float, default=60.0, metavar="SECONDS",
                   help="with a scheduler address: how long to wait while the cluster has "
                   "no workers before stopping with an error (default 60)")
    s.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    from .video.cli import add_arguments as add_video_arguments

    add_video_arguments(s)  # --temporal, --codec, --crf, --fps, --resume (docs/video.md)
    sub.add_parser("train", help="train a backend: colorplug train BACKEND --data DIR --out FILE",
                   add_help=False)
    s = sub.add_parser("eval", help="evaluate backends on colour photos")
    s.add_argument("--data", nargs="+", help="folders or files of colour photos")
    s.add_argument("--backend", action="append", help="backend to evaluate (repeatable); "
                   "'gray' is the zero-chroma baseline; LABEL=NAME?key=value&... passes "
                   "options, e.g. 'unet=cgan?weights=g.safetensors'")
    s.add_argument("--list", help="only the file names listed in this text file")
    s.add_argument("--split", help="only one part of a fixed split, NAME:PART (e.g. "
                   "photos_v1:val to choose settings, photos_v1:test to report)")
    s.add_argument("--out", help="report folder (CSV, JSON, contact sheet)")
    s.add_argument("--max-side", type=int, default=256, help="resize photos (0: full size)")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--device", default="auto")
    s.add_argument("--reference", help="one colour reference for all images")
    s.add_argument("--reference-pairs", help="CSV of 'image,reference' file paths: a reference "
                   "per photo (e.g. another photo of the same kind of scene)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing report")
    s.add_argument("--simulated-hints", type=_bounded(int, 0), default=None, metavar="K",
                   help="give backends that take hints K simulated user hints per photo "
                   "(Zhang et al. 2017: random places, the truth's 5x5 mean colour)")
    s.add_argument("--hints-seed", type=int, default=0, help="seed of --simulated-hints")
    s.add_argument("--self-reference", action="store_true",
                   help="use each photo itself as reference (sanity check)")
    s.add_argument("--video", help="evaluate on a clip instead of photos: a video file, a "
                   "folder of frames or a .npy stack; flicker (warp error, CDC) and, with "
                   "colour ground truth, PSNR / colourfulness (see docs/video.md)")
    s.add_argument("--truth", help="--video: colour ground-truth clip (default: the clip "
                   "itself when it is in colour)")
    s.add_argument("--temporal", action="append", choices=["off", "flow", "exemplar"],
                   help="--video: temporal mode(s) to evaluate (repeatable; default off)")
    s.add_argument("-q", "--quiet", action="store_true")
    s = sub.add_parser("export", help="export a backend's network to ONNX for deployment")
    s.add_argument("backend", help="backend name, or NAME?key=value&... with its options "
                   "(e.g. 'ddcolor-tiny?input_size=256'); backends with the 'runtime' option")
    s.add_argument("--format", default="onnx", choices=["onnx"], help="file format (onnx)")
    s.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    s.add_argument("--weights", default=None, help="weights name, path or URL (default: the "
                   "backend's own)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing file")
    s.add_argument("--download", action="store_true",
                   help="download the backend's weights if they are not in the cache yet")
    s.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    s = sub.add_parser("gimp", help="install or remove the GIMP 3 plug-in")
    s.add_argument("action", choices=["install", "uninstall"])
    s.add_argument("--gimp-dir", help="GIMP 3 user folder (default: GIMP's own, or "
                   "$GIMP3_DIRECTORY)")
    from .weights_cli import add_parser as add_weights_parser

    add_weights_parser(sub)
    return p


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--intensity-range -1000,2000`` -> ``--intensity-range=-1000,2000`` (see
    `NEGATIVE_VALUE_FLAGS`); other arguments are left as they are."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if (token in NEGATIVE_VALUE_FLAGS and i + 1 < len(argv)
                and re.match(r"-\.?\d", argv[i + 1])):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    try:
        if argv and argv[0] == "train":
            return cmd_train(argv[1:])
        args = build_parser().parse_args(argv)
        from .weights_cli import cmd_weights

        handler = {"list": cmd_list, "plugins": cmd_plugins, "info": cmd_info,
                   "colorize": cmd_colorize, "eval": cmd_eval, "gimp": cmd_gimp,
                   "weights": cmd_weights, "export": cmd_export}[args.command]
        return handler(args)
    except ColorplugError as exc:
        err(str(exc))
        return 2
    except KeyboardInterrupt:
        err("interrupted")
        return 130


def run() -> None:
    """The ``colorplug`` command: `main`, then exit when its work is done, also when a
    plugin left threads running that would keep the interpreter waiting at exit (a
    plugin calling ``os._exit`` itself cannot be contained in process)."""
    code = main()
    import threading

    lingering = [t for t in threading.enumerate()
                 if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if lingering:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
