"""The output policy of every command that writes files (colorize today; video, dask and
training outputs follow it).

1. Every output name is planned before the first write: two inputs that would land on one
   output name are found up front (`PlanError`), never one silently replacing the other.
2. A file output must have a format's suffix; a suffix that is not one is an error, never a
   folder. A folder output is a name without a suffix or an existing folder; a ``.zarr``
   folder (a stack written by ``--scheduler``) is one output, like a file.
3. An existing output is left alone and reported (the run fails) unless the user chose
   ``skip`` (counted as skipped) or ``overwrite``.
4. Files under the output folder are never inputs, also when it lies inside an input
   folder.
"""
from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .errors import ColorplugError


class PlanError(ColorplugError):
    """The outputs asked for cannot be planned (a clash, a bad suffix, nothing to do)."""


class ExistingPolicy(enum.Enum):
    """What to do with an output file that already exists."""

    REPORT = "report"        # leave it alone, report it, the run fails (the default)
    SKIP = "skip"            # leave it alone, count it as skipped
    OVERWRITE = "overwrite"  # replace it (atomically)

    @classmethod
    def from_flags(cls, *, overwrite: bool, skip_existing: bool) -> "ExistingPolicy":
        if overwrite and skip_existing:
            raise PlanError("--overwrite and --skip-existing exclude each other")
        return cls.OVERWRITE if overwrite else cls.SKIP if skip_existing else cls.REPORT


#: Folders that are one input or output, like a file (a zarr array or OME-Zarr image).
ONE_ITEM_FOLDERS = (".zarr",)


def _is_one_item(path: Path) -> bool:
    return path.suffix.lower() in ONE_ITEM_FOLDERS


@dataclass(frozen=True)
class Planned:
    """One input and the output it will be written to."""

    source: Path
    target: Path


def plan_outputs(inputs: Sequence[Path], output: Path, *, find: Callable[[Path], Iterable[Path]],
                 suffixes: Iterable[str], folder_suffix: str = ".png",
                 name_for: Callable[[Path, str], str] | None = None,
                 flag: str = "-o/--output") -> list[Planned]:
    """Plan where each input goes. `find(folder)` lists the files of an input folder;
    `suffixes` are the formats a file output may have; `name_for(source, folder_suffix)`
    names an output in a folder (default: the source's stem + `folder_suffix`).
    Raises `PlanError`."""
    name_for = name_for or (lambda src, suffix: src.stem + suffix)
    suffixes = {s.lower() for s in suffixes}
    is_file_output = output.suffix.lower() in suffixes and (
        not output.is_dir() or _is_one_item(output))
    if output.suffix and not is_file_output and not output.is_dir():
        raise PlanError(f"{flag} {output}: {output.suffix!r} is not a format colorplug "
                        f"writes ({', '.join(sorted(suffixes))}); for a folder give a name "
                        "without a suffix")
    if is_file_output:
        if len(inputs) != 1 or (inputs[0].is_dir() and not _is_one_item(inputs[0])):
            count = "a folder" if inputs and inputs[0].is_dir() else f"{len(inputs)} inputs"
            raise PlanError(f"{flag} {output} names one file but {count} were given; give "
                            "a folder name (without a suffix) for several outputs")
        return [Planned(inputs[0], output)]
    plan: list[Planned] = []
    out_folder = output.resolve()
    for src in inputs:
        if src.is_dir():
            # an output folder inside an input folder is never an input: a rerun would
            # colorize its own earlier outputs into output/output/...
            files = [f for f in find(src) if out_folder not in f.resolve().parents]
            if not files:
                raise PlanError(f"no images found in {src}")
            plan.extend(Planned(f, output / f.relative_to(src).parent / name_for(f, folder_suffix))
                        for f in files)
        else:
            plan.append(Planned(src, output / name_for(src, folder_suffix)))
    clashes = defaultdict(list)
    for item in plan:
        clashes[item.target].append(item.source)
    clashing = {t: s for t, s in clashes.items() if len(s) > 1}
    if clashing:
        lines = "; ".join(f"{' and '.join(map(str, srcs))} -> {target}"
                          for target, srcs in sorted(clashing.items())[:5])
        raise PlanError(f"{sum(map(len, clashing.values()))} inputs would be written to the same "
                        f"output name ({lines}); nothing was written. Rename them or colorize "
                        "them into separate folders")
    return plan
