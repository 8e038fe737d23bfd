"""Training the autoencoder: MSE on RGB, Adam (lr 1e-3), lr halved on plateau."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ...color import lab_to_rgb_torch, rgb_to_lab_torch
from ...train import PhotoDataset, TrainConfig
from .model import VARIANTS, Autoencoder, AutoencoderConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=VARIANTS, default="none",
                        help="regularisation ablation of the paper (default: none)")
    parser.set_defaults(lr=1e-3, batch_size=128, epochs=30)


class AutoencoderTask:
    name = "autoencoder"

    def __init__(self, variant: str = "none") -> None:
        self.cfg = AutoencoderConfig(variant=variant)

    def adopt_config(self, config: dict[str, Any]) -> None:
        """Fine-tuning: the base weights' network (size, latent, variant)."""
        from ...errors import InputError

        try:
            self.cfg = AutoencoderConfig(**config)
        except TypeError as exc:
            raise InputError(f"--from: the weights' configuration is not an autoencoder's "
                             f"({exc})") from None

    def build_model(self) -> Autoencoder:
        return Autoencoder(self.cfg)

    def config_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def datasets(self, train: list[Path], val: list[Path], cfg: TrainConfig):
        steps = cfg.steps_per_epoch or 50
        size = self.cfg.size
        train_ds = PhotoDataset(train, size, samples_per_epoch=steps * cfg.batch_size,
                                cache_side=size * 4)
        val_ds = PhotoDataset(val, size, train=False, cache_side=size * 4) if val else None
        return train_ds, val_ds

    def optimizer(self, model: torch.nn.Module, cfg: TrainConfig):
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        return opt, torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)

    def loss(self, model: torch.nn.Module, rgb: torch.Tensor):
        lightness = rgb_to_lab_torch(rgb)[:, :1] / 100.0
        pred = model(lightness)
        loss = F.mse_loss(pred.float(), rgb)
        with torch.no_grad():
            ab = rgb_to_lab_torch(pred.float())[:, 1:]
            chroma = ab.norm(dim=1).mean()
        return loss, {"chroma": chroma.item()}

    def samples(self, model: torch.nn.Module, rgb: torch.Tensor) -> list[torch.Tensor]:
        lab = rgb_to_lab_torch(rgb)
        pred_ab = rgb_to_lab_torch(model(lab[:, :1] / 100.0).float())[:, 1:]
        gray = lab_to_rgb_torch(torch.cat([lab[:, :1], torch.zeros_like(pred_ab)], 1))
        pred = lab_to_rgb_torch(torch.cat([lab[:, :1], pred_ab], 1))
        return [gray, pred, rgb]


def make_task(args: argparse.Namespace) -> AutoencoderTask:
    return AutoencoderTask(variant=args.variant)
