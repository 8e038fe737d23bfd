"""Grouping images of one working shape so a network sees them as one batch."""
from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterator, Sequence


def batches_by_shape(shapes: Sequence[Hashable], max_batch: int) -> Iterator[list[int]]:
    """Indices of `shapes` grouped by equal shape, in chunks of at most `max_batch`, in the
    order each shape first appears."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, shape in enumerate(shapes):
        groups[shape].append(i)
    step = max(1, int(max_batch))
    for indices in groups.values():
        for k in range(0, len(indices), step):
            yield indices[k:k + step]
