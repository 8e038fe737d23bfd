"""The work folder of a video job: finished segments and the settings they were made with.

A long job writes its output as segments into ``.NAME.colorplug-work/`` beside the output
NAME, and muxes them into NAME at the end, so an interrupted run leaves no final file and
``--resume`` continues after the last finished segment. A segment is finished once its
file has been renamed into place (``seg_00003.nut``, with the source timestamps of its
frames in ``seg_00003.json``); image-sequence outputs keep one finished file per frame in
``frames/``. ``settings.json`` records what the run was asked to do; a resume with other
settings is refused. ``lock`` holds the process id of the run writing the folder.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError
from ..files import clean_stale_parts, move_into_place, process_alive, temporary_beside

WORK_SUFFIX = ".colorplug-work"
#: The flag each setting comes from, to name it when a resume does not match.
FLAGS = {"input": "the input", "input_stamp": "the input file's size or date",
         "target": "-o/--output", "backend": "--backend", "temporal": "--temporal", "references": "--reference", "codec": "--codec",
         "crf": "--crf", "segment_frames": "--segment-frames", "fps": "--fps",
         "intensity_range": "--intensity-range", "output_format": "--output-format",
         "version": "the colorplug version"}


def work_folder_for(target: Path) -> Path:
    """Where the work folder of output `target` lives: hidden, beside it."""
    return target.parent / f".{target.name}{WORK_SUFFIX}"


class WorkFolder:
    """Segments of one output on disk, resumable."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = work_folder_for(target)
        self.frames_dir = self.path / "frames"
        self._locked = False

    # ------------------------------------------------------------------ state
    def exists(self) -> bool:
        return self.path.is_dir()

    def settings(self) -> dict | None:
        try:
            return json.loads((self.path / "settings.json").read_text())
        except (OSError, ValueError):
            return None

    def segments(self) -> list[tuple[Path, list[int]]]:
        """Finished segments from the first on, each with its frames' source timestamps."""
        found = []
        while True:
            seg = self.path / f"seg_{len(found):05d}.nut"
            stamps = seg.with_suffix(".json")
            if not (seg.is_file() and stamps.is_file()):
                return found
            try:
                found.append((seg, [int(t) for t in json.loads(stamps.read_text())]))
            except (OSError, ValueError):
                return found

    def frames_done(self) -> int:
        """Frames in finished segments."""
        return sum(len(stamps) for _, stamps in self.segments())

    def describe(self) -> str:
        segments = len(self.segments())
        frames = len(list(self.frames_dir.iterdir())) if self.frames_dir.is_dir() else 0
        done = f"{segments} finished segments" if segments else f"{frames} finished frames"
        return f"{self.path} ({done})"

    # ------------------------------------------------------------------ life cycle
    def start(self, settings: dict, *, resume: bool, overwrite: bool) -> bool:
        """Create or reuse the folder; return whether earlier work is continued.
        Refuses a folder another live run writes, an interrupted one without --resume
        or --overwrite, and a resume with other settings."""
        if self.exists():
            self._lock()
            if resume:
                old = self.settings()
                if old is not None:
                    diff = [FLAGS.get(k, k) for k in sorted(set(old) | set(settings))
                            if old.get(k) != settings.get(k)]
                    if diff:
                        raise InputError(
                            f"--resume: {self.path} was made with other settings "
                            f"({', '.join(diff)} differ); run again with the original ones, "
                            "or without --resume and with --overwrite to start over")
                    clean_stale_parts([self.path, self.frames_dir])
                    return True
            elif not overwrite:
                raise InputError(
                    f"an interrupted run left its work in {self.describe()}: pass --resume "
                    f"to continue it, or --overwrite to start over")
            self.remove(keep_lock=True)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._lock()
        self._write_json(self.path / "settings.json", settings)
        return False

    def _lock(self) -> None:
        lock = self.path / "lock"
        try:
            pid = int(lock.read_text())
        except (OSError, ValueError):
            pid = None
        if pid is not None and pid != os.getpid() and process_alive(pid):
            raise OutputError(f"another colorplug run (process {pid}) is writing "
                              f"{self.target}; wait for it to finish")
        if self.path.is_dir():
            lock.write_text(str(os.getpid()))
            self._locked = True

    def unlock(self) -> None:
        if self._locked:
            try:
                (self.path / "lock").unlink()
            except OSError:
                pass
            self._locked = False

    def _write_json(self, path: Path, data: Any) -> None:
        tmp = temporary_beside(path)
        tmp.write_text(json.dumps(data, indent=1))
        move_into_place(tmp, path, overwrite=True)

    def new_segment(self) -> tuple[int, Path]:
        """The index of the next segment and a temporary file to encode it into."""
        index = len(self.segments())
        return index, temporary_beside(self.path / f"seg_{index:05d}.nut")

    def finish_segment(self, index: int, tmp: Path, stamps: list[int]) -> None:
        """Mark a segment finished: its timestamps first, then its file, renamed in place."""
        seg = self.path / f"seg_{index:05d}.nut"
        self._write_json(seg.with_suffix(".json"), stamps)
        move_into_place(tmp, seg, overwrite=True)

    def remove(self, *, keep_lock: bool = False) -> None:
        """Delete the folder (after the final file is in place, or on a failed start)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if not keep_lock:
            self._locked = False
