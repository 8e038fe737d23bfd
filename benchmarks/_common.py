"""Helpers shared by the benchmark scripts: timing with a warm-up, writing results."""
from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any, Callable


def timed(fn: Callable[[], Any], reps: int, *, warmup: bool = True) -> dict[str, float]:
    """Median and minimum wall time of `reps` calls (after one untimed call)."""
    if warmup:
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "reps": reps}


def save_json(path: str | None, results: dict) -> None:
    if path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as fh:
            json.dump(results, fh, indent=2)
