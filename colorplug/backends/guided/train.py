"""Training `guided`: photos with simulated user hints (Zhang et al. 2017), smooth-L1 on
a*b*/110; AdamW with a linear warm-up and cosine decay, on random crops.

Each training crop gets, independently: no hints (probability `--no-hint-prob`, so the
prior alone learns to colorize), else a number of points drawn geometrically (mean
`--mean-points`, at most `--max-points`) at uniformly random places, each a square of
1-5 px carrying the truth's mean a*b* over it, and with probability `--stroke-prob` one to
three straight strokes carrying the truth's mean a*b* along them. A hinted pixel's a*b*
and the mask go in with L*.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ...color import lab_to_rgb_torch, rgb_to_lab_torch
from ...errors import InputError
from ...train import PhotoDataset, TrainConfig
from ...train.schedule import warmup_cosine
from .model import AB_SCALE, GuidedConfig, GuidedNet, network_input


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", type=int, default=24, help="channels of the top U-Net level")
    parser.add_argument("--depth", type=int, default=4, help="U-Net levels below the top")
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=100, help="warm-up steps")
    parser.add_argument("--no-hint-prob", type=float, default=0.1)
    parser.add_argument("--mean-points", type=float, default=10.0)
    parser.add_argument("--max-points", type=int, default=50)
    parser.add_argument("--stroke-prob", type=float, default=0.3)
    parser.set_defaults(lr=1e-3, batch_size=16, epochs=20)


def simulate_hints(ab: torch.Tensor, args: argparse.Namespace,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulated user hints for a batch of true a*b* (N, 2, H, W) -> (hint a*b*, mask)."""
    n, _, h, w = ab.shape
    hint = torch.zeros_like(ab)
    mask = torch.zeros((n, 1, h, w), dtype=ab.dtype, device=ab.device)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator)

    for i in range(n):
        if rand(1).item() < args.no_hint_prob:
            continue
        p = 1.0 / max(args.mean_points, 1.0)
        k = min(args.max_points, 1 + int(math.log(max(rand(1).item(), 1e-12)) / math.log(1 - p)))
        for _ in range(k):
            s = int(rand(1).item() * 3) * 2 + 1  # 1, 3 or 5 px
            y = int(rand(1).item() * (h - s + 1))
            x = int(rand(1).item() * (w - s + 1))
            colour = ab[i, :, y:y + s, x:x + s].mean(dim=(1, 2))
            hint[i, :, y:y + s, x:x + s] = colour[:, None, None]
            mask[i, :, y:y + s, x:x + s] = 1
        if rand(1).item() < args.stroke_prob:
            for _ in range(1 + int(rand(1).item() * 3)):
                y0, x0 = rand(1).item() * (h - 1), rand(1).item() * (w - 1)
                angle, length = rand(1).item() * math.pi, 5 + rand(1).item() * 0.3 * max(h, w)
                t = torch.linspace(0, 1, int(length) + 1)
                ys = (y0 + t * length * math.sin(angle)).round().long().clamp(0, h - 1)
                xs = (x0 + t * length * math.cos(angle)).round().long().clamp(0, w - 1)
                colour = ab[i, :, ys, xs].mean(dim=1)
                hint[i, :, ys, xs] = colour[:, None]
                mask[i, :, ys, xs] = 1
    return hint, mask


class GuidedTask:
    name = "guided"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cfg = GuidedConfig(base=args.base, depth=args.depth)
        if args.crop % self.cfg.multiple:
            raise InputError(f"--crop must be a multiple of {self.cfg.multiple} (2**depth); "
                             f"got {args.crop}")
        self.fine_tuning = False

    def adopt_config(self, config: dict[str, Any]) -> None:
        """Fine-tuning: the base weights' network (base width, depth)."""
        try:
            self.cfg = GuidedConfig(**config)
        except TypeError as exc:
            raise InputError(f"--from: the weights' configuration is not a guided network's "
                             f"({exc})") from None
        self.fine_tuning = True

    def build_model(self) -> GuidedNet:
        return GuidedNet(self.cfg)

    def config_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def datasets(self, train: list[Path], val: list[Path], cfg: TrainConfig):
        steps = cfg.steps_per_epoch or 50
        crop = self.args.crop
        kw = {"cache_side": crop * 2}
        train_ds = PhotoDataset(train, crop, samples_per_epoch=steps * cfg.batch_size, **kw)
        val_ds = PhotoDataset(val, crop, train=False, **kw) if val else None
        self.total_steps = steps * cfg.epochs
        return train_ds, val_ds

    def optimizer(self, model: torch.nn.Module, cfg: TrainConfig):
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        sched = warmup_cosine(opt, self.args.warmup, self.total_steps)
        return opt, sched

    def _inputs(self, rgb: torch.Tensor, fixed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        lab = rgb_to_lab_torch(rgb.float())
        # validation: the same simulated hints every epoch (a fixed generator)
        gen = torch.Generator().manual_seed(0) if fixed else None
        hint, mask = simulate_hints(lab[:, 1:].cpu(), self.args, gen)
        hint, mask = hint.to(lab.device), mask.to(lab.device)
        return lab, network_input(lab[:, :1], hint, mask)

    def loss(self, model: torch.nn.Module, rgb: torch.Tensor):
        lab, x = self._inputs(rgb, fixed=not model.training)
        pred = model(x).float()
        loss = F.smooth_l1_loss(pred, lab[:, 1:] / AB_SCALE, beta=0.05)
        with torch.no_grad():
            chroma = (pred * AB_SCALE).norm(dim=1).mean()
        return loss, {"chroma": chroma.item()}

    def samples(self, model: torch.nn.Module, rgb: torch.Tensor) -> list[torch.Tensor]:
        lab, x = self._inputs(rgb, fixed=True)
        ab = model(x).float() * AB_SCALE
        gray = lab_to_rgb_torch(torch.cat([lab[:, :1], torch.zeros_like(ab)], 1))
        return [gray, lab_to_rgb_torch(torch.cat([lab[:, :1], ab], 1)), rgb]


def make_task(args: argparse.Namespace) -> GuidedTask:
    return GuidedTask(args)
