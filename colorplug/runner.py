"""Running a planned list of files through one colorizer, as fast as the machine allows and
with each file failing alone.

Files are decoded in a background thread while the previous chunk is colorized, images of
a chunk go through the backend as one batch (`Colorizer.colorize_batch`, which batches the
network for images of one working shape), and results are encoded and written in the
background. A chunk whose batch fails is redone image by image, so the error is reported
against the file that caused it.
"""
from __future__ import annotations

import contextlib
import sys
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .outputs import Planned


@dataclass
class RunReport:
    """What happened to each planned file."""

    done: int = 0
    existing: list[Path] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)


def describe(exc: BaseException) -> str:
    """One line for a failed file: colorplug's and OS errors by their message, others with
    their type."""
    from .errors import ColorplugError

    return str(exc) if isinstance(exc, (ColorplugError, OSError)) else \
        f"{type(exc).__name__}: {exc}"


@contextlib.contextmanager
def _one_thread_for_io(busy: bool):
    """While the I/O threads decode, recombine and encode beside the network, torch runs
    one intra-op thread fewer (if it has several), so the two do not fight for cores."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if busy and torch is not None else 1
    if threads > 1:
        torch.set_num_threads(threads - 1)
    try:
        yield
    finally:
        if threads > 1:
            torch.set_num_threads(threads)


def run_plan(items: Sequence[Planned], *, load: Callable[[Planned], Any],
             colorize_batch: Callable[[list[Any]], list[Any]],
             colorize_other: Callable[[Planned, Any], bytes],
             encode: Callable[[Planned, Any], bytes], write: Callable[[Planned, bytes], None],
             batch_size: int = 8, progress: Callable[[], None] = lambda: None) -> RunReport:
    """Colorize `items`. `load(item)` returns an image array or, for files handled whole
    (stacks), any other object that `colorize_other(item, obj)` turns into bytes;
    `colorize_batch(images)` returns results or functions making them (deferred
    recombination, run in the I/O threads); `encode(item, rgb)` makes the bytes written by
    `write(item, data)`."""
    import numpy as np

    report = RunReport()
    chunks = [list(items[i:i + batch_size]) for i in range(0, len(items), batch_size)]

    def safe_load(item: Planned) -> tuple[Planned, Any, BaseException | None]:
        try:
            return item, load(item), None
        except Exception as exc:  # noqa: BLE001 - reported against the file
            return item, None, exc

    def safe_write(item: Planned, data: bytes) -> tuple[Planned, BaseException | None]:
        try:
            write(item, data)
            return item, None
        except Exception as exc:  # noqa: BLE001
            return item, exc

    def encode_write(item: Planned, rgb: Any) -> tuple[Planned, BaseException | None]:
        try:
            data = encode(item, rgb() if callable(rgb) else rgb)
        except Exception as exc:  # noqa: BLE001
            return item, exc
        return safe_write(item, data)

    def settle(future: Future) -> None:
        item, exc = future.result()
        if exc is None:
            report.done += 1
        elif isinstance(exc, FileExistsError):  # appeared while we worked: never replaced
            report.existing.append(item.target)
        else:
            report.failures.append((item.source, describe(exc)))
        progress()

    def colorize_recorded(fn: Callable[[], Any], sources: list[Path]) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn()
        for message in dict.fromkeys(str(w.message) for w in caught):
            report.warnings.extend((src, message) for src in sources[:1])
        return result

    writes: list[Future] = []
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="colorplug-io") as pool, \
            _one_thread_for_io(len(chunks) > 1):
        loading = [pool.submit(safe_load, item) for item in chunks[0]] if chunks else []
        for index in range(len(chunks)):
            loaded = [f.result() for f in loading]
            if index + 1 < len(chunks):  # decode the next chunk while this one runs
                loading = [pool.submit(safe_load, item) for item in chunks[index + 1]]
            images: list[tuple[Planned, Any]] = []
            for item, obj, exc in loaded:
                if exc is not None:
                    report.failures.append((item.source, describe(exc)))
                    progress()
                elif isinstance(obj, np.ndarray):
                    images.append((item, obj))
                else:
                    try:
                        data = colorize_recorded(lambda: colorize_other(item, obj), [item.source])
                    except Exception as exc2:  # noqa: BLE001
                        report.failures.append((item.source, describe(exc2)))
                        progress()
                        continue
                    writes.append(pool.submit(safe_write, item, data))
            results: list[tuple[Planned, Any, BaseException | None]] = []
            if images:
                try:
                    outs = colorize_recorded(lambda: colorize_batch([im for _, im in images]),
                                             [images[0][0].source])
                    results = [(item, out, None) for (item, _), out in zip(images, outs)]
                except KeyboardInterrupt:
                    raise
                except Exception:  # noqa: BLE001 - redo one by one to name the bad file
                    for item, image in images:
                        try:
                            out = colorize_recorded(lambda: colorize_batch([image])[0],
                                                    [item.source])
                            if callable(out):
                                out = out()
                            results.append((item, out, None))
                        except Exception as exc:  # noqa: BLE001
                            results.append((item, None, exc))
            for item, out, exc in results:
                if exc is not None:
                    report.failures.append((item.source, describe(exc)))
                    progress()
                else:
                    writes.append(pool.submit(encode_write, item, out))
            for future in [w for w in writes if w.done()]:
                writes.remove(future)
                settle(future)
        for future in writes:
            settle(future)
    return report
