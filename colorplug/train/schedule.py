"""Learning-rate schedules shared by the backends' training tasks."""
from __future__ import annotations

import math

import torch


def warmup_cosine(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at step `total`; stepped
    per step (``per_step``), as `colorplug.train.fit` reads it."""
    total = max(total, 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    sched.per_step = True
    return sched
