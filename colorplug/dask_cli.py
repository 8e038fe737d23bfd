"""``colorplug colorize --scheduler``: the planned outputs of the CLI run as dask tasks.

The driver plans outputs and applies the output policy exactly as without a scheduler
(`colorplug.outputs`); only the run moves: one task per file on a local dask scheduler
(threads or processes) or a distributed cluster (``tcp://HOST:PORT``). Each task loads
its file, colorizes it with its worker's cached model (`colorplug.dask.colorizer_for`) and
writes atomically, so a file fails alone and a task retried after a lost worker finds its
identical output already in place. Zarr / OME-Zarr inputs and TIFF stacks become zarr
outputs (``NAME.zarr``), written chunk by chunk into a temporary folder that is renamed
into place when complete, so a partial stack never counts as done.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import ColorplugError, InputError
from .outputs import Planned, PlanError
from .runner import RunReport, describe

ZARR_SUFFIX = ".zarr"
LOCAL_SCHEDULERS = ("threads", "processes")


#: Address schemes a dask scheduler listens on that another process can reach
#: (``inproc://`` is one process's own and means nothing on a command line).
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def check_scheduler(text: str) -> str:
    """``threads``, ``processes`` or a scheduler address such as ``tcp://HOST:8786``;
    anything else is a PlanError naming the flag and what is wrong with the address."""
    if text in LOCAL_SCHEDULERS:
        return text
    usage = ("--scheduler must be threads, processes or a dask scheduler address "
             f"(tcp://HOST:PORT); got {text!r}")
    if "://" not in text:
        raise PlanError(usage)
    import urllib.parse

    scheme, _, rest = text.partition("://")
    if scheme not in SCHEDULER_SCHEMES:
        raise PlanError(f"{usage}: {scheme}:// is not an address a scheduler listens on "
                        f"({', '.join(s + '://' for s in SCHEDULER_SCHEMES)})")
    try:
        parsed = urllib.parse.urlsplit(f"tcp://{rest}")
        host, port = parsed.hostname, parsed.port
    except ValueError:
        raise PlanError(f"{usage}: the port is not a number from 1 to 65535") from None
    if not host:
        raise PlanError(f"{usage}: the address names no host")
    if port is not None and not 0 < port < 65536:
        raise PlanError(f"{usage}: the port is not a number from 1 to 65535")
    return text


# ------------------------------------------------------------------------- stacks
def is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ZARR_SUFFIX and path.is_dir()


def is_tiff_stack(path: Path) -> bool:
    """A TIFF whose first series holds more than one grayscale plane."""
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return False
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes = series.shape, series.axes
    except Exception:  # noqa: BLE001 - reported when the file is read for real
        return False
    planes = 1
    for size, axis in zip(shape[:-2], axes[:-2]):
        planes *= size
    return len(shape) >= 3 and "S" not in axes and axes.endswith("YX") and planes > 1


def is_stack(path: Path) -> bool:
    return is_zarr(path) or is_tiff_stack(path)


def stack_planning(find: Callable[[Path], Iterable[Path]],
                   name_for: Callable[[Path, str], str], suffixes: set[str]
                   ) -> tuple[Callable, Callable, set[str]]:
    """The CLI's planning functions extended for stacks: a ``.zarr`` input is one input
    (not a folder to search), and stacks are written to ``NAME.zarr``."""
    def find_stacks(folder: Path) -> list[Path]:
        if is_zarr(folder):
            return [folder]
        found = [p for p in folder.rglob("*" + ZARR_SUFFIX) if p.is_dir()]
        inside = [p for p in found if not any(q in p.parents for q in found)]
        rest = [f for f in find(folder) if not any(z in f.parents for z in inside)]
        return sorted(inside + rest)

    def stack_name(src: Path, suffix: str) -> str:
        if not is_stack(src):
            return name_for(src, suffix)
        name = src.name
        for ending in (".ome.tiff", ".ome.tif", ".ome.zarr", ".zarr", ".tiff", ".tif"):
            if name.lower().endswith(ending):
                return name[: -len(ending)] + ZARR_SUFFIX
        return src.stem + ZARR_SUFFIX

    return find_stacks, stack_name, suffixes | {ZARR_SUFFIX}


def open_stack(path: Path) -> Any:
    """A zarr / OME-Zarr folder (its full-resolution level) or a TIFF stack as a dask
    array of planes (..., Y, X), read lazily."""
    import dask.array as da

    try:
        if is_zarr(path):
            import zarr

            node = zarr.open(str(path), mode="r")
            if isinstance(node, zarr.Group):  # OME-Zarr: the first multiscale level
                scales = node.attrs.get("multiscales") or \
                    node.attrs.get("ome", {}).get("multiscales")
                level = scales[0]["datasets"][0]["path"] if scales else None
                if level is None:
                    raise InputError(f"{str(path)!r} is a zarr group without OME "
                                     "multiscales metadata; give the array inside it")
                node = node[level]
            array = da.from_zarr(node)
        else:
            array = _tiff_planes(path)
    except ColorplugError:
        raise
    except Exception as exc:  # noqa: BLE001 - zarr/tifffile raise many kinds
        raise InputError(f"cannot read {str(path)!r} as a stack ({exc})") from None
    while array.ndim > 4 and array.shape[0] == 1:  # OME-Zarr TCZYX with one T or C
        array = array[0]
    return array


def _read_tiff_plane(path: str, index: int) -> Any:
    import tifffile

    return tifffile.imread(path, key=index)


def _tiff_planes(path: Path) -> Any:
    """A TIFF stack's pages as a dask array, one task reading one page (picklable for
    process and cluster workers, unlike an open TIFF file)."""
    import dask
    import dask.array as da
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape, dtype = series.shape, series.dtype
        pages = len(series.pages)
    count = int(np.prod(shape[:-2]))
    if pages != count:
        raise InputError(f"{str(path)!r}: {pages} pages for {count} planes of shape {shape}")
    read = dask.delayed(_read_tiff_plane, pure=True)
    planes = [da.from_delayed(read(str(path), i), shape[-2:], dtype) for i in range(count)]
    return da.stack(planes).reshape(shape)


def _temporary_folder(target: Path) -> Path:
    from .files import temporary_folder_beside

    return temporary_folder_beside(target)


def _colorize_stack(item: Planned, spec: Any, reference: Any, overwrite: bool,
                    compute: Callable[[Any], None]) -> None:
    """A stack -> ``item.target`` (zarr), written chunk by chunk into a temporary folder
    and renamed into place when every chunk is written."""
    from .dask import colorize_array

    planes = open_stack(item.source)
    rgb = colorize_array(planes, spec.name, reference=reference, device=spec.device,
                         weights=spec.weights, **dict(spec.options))
    tmp = _temporary_folder(item.target)
    try:
        compute(rgb.to_zarr(str(tmp), overwrite=True, compute=False))
        if item.target.exists():
            if not overwrite:
                raise FileExistsError(f"{str(item.target)!r} exists")
            shutil.rmtree(item.target)
        os.rename(tmp, item.target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# -------------------------------------------------------------------------- files
_references: dict[str, Any] = {}


def _read_cached(path: str | None) -> Any:
    if path is None:
        return None
    if path not in _references:
        from .image import read_image

        _references[path] = read_image(path)
    return _references[path]


def colorize_file(item: Planned, spec: Any, args: argparse.Namespace,
                  overwrite: bool) -> tuple[str, str, list[str]]:
    """One task: load, colorize with this worker's model, encode, write atomically.
    Returns (status, message, warnings); status is done, existing or failed."""
    from .cli_shared import colorize_planes, load_input
    from .dask import colorizer_for
    from .files import write_bytes_atomic
    from .image import encode_image

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            colorizer = colorizer_for(spec)
            reference, hints = _read_cached(args.reference), _read_cached(args.hints)
            obj = load_input(item, args)
            if isinstance(obj, np.ndarray):
                rgb = colorizer.colorize_batch([obj], reference=reference, hints=hints)[0]
                data = encode_image(rgb, item.target.suffix)
            else:
                data = colorize_planes(colorizer, item, obj, args, reference, hints)
            try:
                write_bytes_atomic(item.target, data, overwrite=overwrite)
                status, message = "done", ""
            except FileExistsError:
                # a retried task (its worker died after the rename) finds its own output
                same = item.target.is_file() and item.target.read_bytes() == data
                status, message = ("done", "") if same else ("existing", "")
        except Exception as exc:  # noqa: BLE001 - each file fails alone
            status, message = "failed", describe(exc)
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    return status, message, notes


def _record(report: RunReport, item: Planned, result: tuple[str, str, list[str]]) -> None:
    status, message, notes = result
    report.warnings.extend((item.source, note) for note in notes[:1])
    if status == "done":
        report.done += 1
    elif status == "existing":
        report.existing.append(item.target)
    else:
        report.failures.append((item.source, message))


def spec_from_args(args: argparse.Namespace) -> Any:
    """The backend the CLI builds (``-b``, ``--device``, dtype and range) as a spec."""
    from .cli_shared import backend_and_options, parse_range
    from .dask import BackendSpec

    name, options = backend_and_options(args.backend)
    return BackendSpec.of(name, device=args.device, output_dtype=args.output_dtype,
                          intensity_range=parse_range(args.intensity_range), **options)


def scheduled_runner(args: argparse.Namespace, *, colorizer: Any, overwrite: bool
                     ) -> Callable[..., RunReport]:
    """A stand-in for `colorplug.runner.run_plan` (same call) that runs on the scheduler;
    the in-process callables are not used: tasks rebuild their work on the workers."""
    def run(items: Sequence[Planned], **_in_process: Any) -> RunReport:
        return run_scheduled(items, args, colorizer=colorizer, overwrite=overwrite)
    return run


def run_scheduled(items: Sequence[Planned], args: argparse.Namespace, *, colorizer: Any,
                  overwrite: bool) -> RunReport:
    """Run the planned `items` on ``args.scheduler``: a task per file, stacks chunk by
    chunk; progress from the scheduler; failures collected per file."""
    from .dask import keep_colorizer

    scheduler = check_scheduler(args.scheduler)
    spec = spec_from_args(args)
    keep_colorizer(spec, colorizer)  # the threads scheduler uses the driver's model
    stacks = [item for item in items if item.target.suffix.lower() == ZARR_SUFFIX]
    files = [item for item in items if item.target.suffix.lower() != ZARR_SUFFIX]
    report = RunReport()
    reference = _read_cached(args.reference)
    if "://" in scheduler:
        return _run_distributed(files, stacks, args, spec, overwrite, reference, report)
    import dask
    from dask.diagnostics import ProgressBar

    def compute(*graphs: Any) -> list[Any]:
        if args.quiet:
            return list(dask.compute(*graphs, scheduler=scheduler))
        with ProgressBar():
            return list(dask.compute(*graphs, scheduler=scheduler))

    if files:
        tasks = [dask.delayed(colorize_file, pure=True)(item, spec, args, overwrite,
                                                        dask_key_name=f"colorize-{i}")
                 for i, item in enumerate(files)]
        for item, result in zip(files, compute(*tasks)):
            _record(report, item, result)
    for item in stacks:
        _run_stack(item, spec, reference, overwrite, compute, report,
                   allow_huge=args.allow_huge_images)
    return report


def _run_stack(item: Planned, spec: Any, reference: Any, overwrite: bool,
               compute: Callable, report: RunReport, *, allow_huge: bool = False) -> None:
    from .image.codecs import check_pixel_count

    try:
        planes = open_stack(item.source)  # metadata only: the planes are read lazily
        check_pixel_count(item.source, int(planes.shape[-2]) * int(planes.shape[-1]),
                          allow_huge=allow_huge)
        _colorize_stack(item, spec, reference, overwrite, compute)
        report.done += 1
    except FileExistsError:
        report.existing.append(item.target)
    except Exception as exc:  # noqa: BLE001 - the stack fails alone
        report.failures.append((item.source, describe(exc)))


def _wait_with_workers(client: Any, futures: list[Any], args: argparse.Namespace) -> None:
    """Wait for `futures` with a progress bar while the cluster has workers; a cluster left
    without any for ``--scheduler-wait`` seconds (all died, none started) is a
    ColorplugError, not a silent wait. (distributed's console progress bar blocks until the end, so it cannot
    watch the workers at the same time.)"""
    from distributed import wait
    from tqdm.auto import tqdm

    since, patience = None, max(0.0, float(getattr(args, "scheduler_wait", 60.0)))
    with tqdm(total=len(futures), desc="colorize (dask)", unit="task",
              disable=args.quiet) as bar:
        while True:
            try:
                wait(futures, timeout=0.5)
                bar.update(len(futures) - bar.n)
                return
            except TimeoutError:
                pass
            bar.update(sum(f.done() for f in futures) - bar.n)
            if client.scheduler_info().get("workers"):
                since = None
                continue
            since = since if since is not None else time.monotonic()
            if time.monotonic() - since > patience:
                raise ColorplugError(
                    f"--scheduler {args.scheduler}: the dask cluster has had no workers for "
                    f"{patience:g} s (all stopped or died; --scheduler-wait); start workers "
                    "(dask worker ADDRESS) and rerun with --skip-existing to finish")


def _run_distributed(files: list[Planned], stacks: list[Planned], args: argparse.Namespace,
                     spec: Any, overwrite: bool, reference: Any,
                     report: RunReport) -> RunReport:
    try:
        from distributed import Client
    except ImportError:
        raise ColorplugError("--scheduler tcp://... needs dask.distributed: pip install "
                             "'colorplug[dask]'") from None
    try:
        client = Client(args.scheduler, timeout="20s")
    except (OSError, ValueError, TypeError) as exc:  # refused, timed out, unknown address
        raise ColorplugError(f"--scheduler {args.scheduler}: cannot reach the dask "
                             f"scheduler ({describe(exc)})") from None
    try:
        with client:
            _run_on_client(client, files, stacks, args, spec, overwrite, reference, report)
    except ColorplugError:
        raise
    except (OSError, TimeoutError) as exc:  # the scheduler went away mid-run
        raise ColorplugError(f"--scheduler {args.scheduler}: lost the dask scheduler during "
                             f"the run ({describe(exc)}); outputs written so far are "
                             "complete, rerun with --skip-existing to finish") from None
    return report


def _run_on_client(client: Any, files: list[Planned], stacks: list[Planned],
                   args: argparse.Namespace, spec: Any, overwrite: bool, reference: Any,
                   report: RunReport) -> None:
    """The files as one task each, then the stacks chunk by chunk, on a connected client."""
    if files:
        futures = client.map(colorize_file, files, spec=spec, args=args,
                             overwrite=overwrite, key=[f"colorplug-file-{i}-{item.target}"
                                                       for i, item in enumerate(files)])
        _wait_with_workers(client, futures, args)
        for item, future in zip(files, futures):
            if future.status == "finished":
                _record(report, item, future.result())
            else:  # the task itself was lost (e.g. it killed its workers every time)
                report.failures.append((item.source, describe(future.exception())))

    def compute(*graphs: Any) -> list[Any]:
        futures = client.compute(list(graphs))
        _wait_with_workers(client, futures, args)
        return client.gather(futures)

    for item in stacks:
        _run_stack(item, spec, reference, overwrite, compute, report,
                   allow_huge=args.allow_huge_images)
