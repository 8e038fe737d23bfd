"""Training `fusion`: MSE on normalized a*b* (``--colour-loss mse``) or rebalanced
cross-entropy over a*b* bins (``--colour-loss bins``, `colorplug.colour_bins`), + alpha *
cross-entropy with scene labels; AdamW with linear warm-up and cosine decay, on 224x224
crops (local = global input)."""
from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ... import colour_bins
from ...color import lab_to_rgb_torch, rgb_to_lab_torch
from ...errors import InputError
from ...train import PhotoDataset, TrainConfig
from ...train.schedule import warmup_cosine
from .model import FusionConfig, FusionNet, ab_to_unit_interval, unit_interval_to_ab


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--width", type=float, default=0.25, help="channel width multiplier")
    parser.add_argument("--labels", default=None,
                        help="scene labels: a CSV (file,label) or 'folders' (sub-folder names)")
    parser.add_argument("--alpha", type=float, default=1 / 300,
                        help="weight of the classification loss (the paper's 1/300)")
    parser.add_argument("--colour-loss", choices=["mse", "bins"], default="mse",
                        help="mse: regress a*b*; bins: classify a*b* into in-gamut bins with "
                        "rebalanced cross-entropy (Zhang et al. 2016)")
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--warmup", type=int, default=200, help="warm-up steps")
    parser.set_defaults(lr=1e-3, batch_size=32, epochs=20)


def read_labels(spec: str | None, paths: list[Path]) -> tuple[dict[str, int], list[str]]:
    """file name -> class index, from a CSV (file,label) or sub-folder names."""
    if not spec:
        return {}, []
    if spec == "folders":
        names = {p.name: p.parent.name for p in paths}
    else:
        with open(spec, newline="") as fh:
            names = {row[0]: row[1] for row in csv.reader(fh) if row and row[0] != "file"}
    classes = sorted(set(names.values()))
    if len(classes) < 2:
        raise InputError(f"labels {spec!r} give {len(classes)} class(es); need at least 2")
    index = {c: i for i, c in enumerate(classes)}
    return {k: index[v] for k, v in names.items()}, classes


class LabelledPhotos(PhotoDataset):
    def __init__(self, paths, size, labels: dict[str, int], **kw) -> None:
        super().__init__(paths, size, **kw)
        self.labels = [labels.get(p.name, -100) for p in self.paths]  # -100: ignored by CE

    def __getitem__(self, index: int):
        return super().__getitem__(index), self.labels[index % len(self.labels)]


class FusionTask:
    name = "fusion"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.label_map: dict[str, int] = {}
        self.classes: list[str] = []
        self.bins = getattr(args, "colour_loss", "mse") == "bins"
        self.centres = torch.from_numpy(colour_bins.in_gamut_bins()) if self.bins else None
        self.bin_weights: torch.Tensor | None = None
        self.cfg = self._config(0)
        self.fine_tuning = False

    def adopt_config(self, config: dict[str, Any]) -> None:
        """Fine-tuning: build the base weights' network (width, heads, bins); their scene
        classes and colour-bin prior come with their tensors and stay as they are."""
        try:
            self.cfg = FusionConfig(**config)
        except TypeError as exc:
            raise InputError(f"--from: the weights' configuration is not a fusion network's "
                             f"({exc})") from None
        self.bins = self.cfg.colour_head == "bins"
        self.centres = torch.from_numpy(colour_bins.in_gamut_bins()) if self.bins else None
        self.fine_tuning = True

    def _config(self, num_classes: int) -> FusionConfig:
        if not self.bins:
            return FusionConfig(width=self.args.width, num_classes=num_classes)
        return FusionConfig(width=self.args.width, num_classes=num_classes,
                            colour_head="bins", num_bins=len(self.centres))

    def build_model(self) -> FusionNet:
        model = FusionNet(self.cfg)
        if self.bins:
            model.bin_centres.copy_(self.centres)
            if self.bin_weights is not None:
                model.bin_weights.copy_(self.bin_weights)
        return model

    def config_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def datasets(self, train: list[Path], val: list[Path], cfg: TrainConfig):
        if not self.fine_tuning:
            self.label_map, self.classes = read_labels(self.args.labels, train + val)
        if self.classes:
            self.cfg = self._config(len(self.classes))
        steps = cfg.steps_per_epoch or 50
        crop = self.args.crop
        kw = {"cache_side": crop * 2}
        if self.classes:
            train_ds = LabelledPhotos(train, crop, self.label_map,
                                      samples_per_epoch=steps * cfg.batch_size, **kw)
            val_ds = LabelledPhotos(val, crop, self.label_map, train=False, **kw) if val else None
        else:
            train_ds = PhotoDataset(train, crop, samples_per_epoch=steps * cfg.batch_size, **kw)
            val_ds = PhotoDataset(val, crop, train=False, **kw) if val else None
        self.total_steps = steps * cfg.epochs
        if self.bins and not self.fine_tuning:
            self.bin_weights = colour_bins.prior_from_photos(train_ds.images, self.centres)
        return train_ds, val_ds

    def optimizer(self, model: torch.nn.Module, cfg: TrainConfig):
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        sched = warmup_cosine(opt, self.args.warmup, self.total_steps)
        return opt, sched

    def _split(self, batch):
        if isinstance(batch, (list, tuple)):
            return batch[0], batch[1]
        return batch, None

    def loss(self, model: torch.nn.Module, batch):
        rgb, labels = self._split(batch)
        lab = rgb_to_lab_torch(rgb.float())
        lightness = lab[:, :1] / 100.0
        ab_half = F.avg_pool2d(lab[:, 1:], 2)
        pred, logits = model(lightness, lightness)
        net = model.module if hasattr(model, "module") else model
        if self.bins:
            colour = colour_bins.rebalanced_cross_entropy(
                pred.float(), ab_half, net.bin_centres, net.bin_weights)
            logs = {"bin_ce": colour.item()}
        else:
            colour = F.mse_loss(pred.float(), ab_to_unit_interval(ab_half))
            logs = {"mse": colour.item()}
        loss = colour
        if logits is not None and labels is not None and (labels >= 0).any():
            ce = F.cross_entropy(logits.float(), labels, ignore_index=-100)
            loss = colour + self.args.alpha * ce
            logs["ce"] = ce.item()
        with torch.no_grad():
            logs["chroma"] = self._decode(net, pred).norm(dim=1).mean().item()
        return loss, logs

    def _decode(self, net: FusionNet, pred: torch.Tensor) -> torch.Tensor:
        """Network output -> a*b* as colorizing decodes it: bins by the annealed mean at the
        config's temperature, times the config's saturation (1 unless fine-tuning from
        weights that ship another)."""
        if self.bins:
            ab = colour_bins.annealed_mean(pred.float(), net.bin_centres, net.cfg.temperature)
        else:
            ab = unit_interval_to_ab(pred.float())
        return ab * net.cfg.saturation

    def on_train_start(self, model: torch.nn.Module) -> None:
        """Fine-tuning: the base was validated with its shipped saturation (the gain that
        made up for its averaged, muted chroma on its own photos); trained on the user's
        images, the network predicts their chroma as it is, so its decode gain is 1."""
        if self.fine_tuning and self.cfg.saturation != 1.0:
            from dataclasses import replace

            self.cfg = replace(self.cfg, saturation=1.0, steering=0.0)
            net = model.module if hasattr(model, "module") else model
            net.cfg = self.cfg

    def samples(self, model: torch.nn.Module, batch) -> list[torch.Tensor]:
        rgb, _ = self._split(batch)
        lab = rgb_to_lab_torch(rgb.float())
        pred, _ = model(lab[:, :1] / 100.0, lab[:, :1] / 100.0)
        net = model.module if hasattr(model, "module") else model
        ab = F.interpolate(self._decode(net, pred), size=rgb.shape[-2:], mode="bilinear",
                           align_corners=False)
        gray = lab_to_rgb_torch(torch.cat([lab[:, :1], torch.zeros_like(ab)], 1))
        return [gray, lab_to_rgb_torch(torch.cat([lab[:, :1], ab], 1)), rgb]


def make_task(args: argparse.Namespace) -> FusionTask:
    return FusionTask(args)
