"""Training `cgan`: L1 (lambda 100) + adversarial loss, a discriminator step per generator step.

The shared loop owns the generator's Adam; this task owns the discriminator's Adam and
steps it inside `loss` (training mode only), with one-sided label smoothing (real = 0.9)
and noisy labels (each real/fake label flipped with probability `--label-noise`), as the
paper used. Validation selects on L1 alone and logs how much predicted chroma varies across
validation images compared with the truth: a spread ratio near 0 is mode collapse.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ... import colour_bins
from ...color import lab_to_rgb_torch, rgb_to_lab_torch
from ...errors import InputError
from ...train import PhotoDataset, TrainConfig
from ...weights import read_torch_state
from .model import (RESNET_ARCHS, GeneratorConfig, ab_to_signed_unit, build_discriminator,
                    build_generator, l_to_unit, signed_unit_to_ab)

COLLAPSE_RATIO = 0.25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generator", choices=("unet", "resnet"), default="unet")
    parser.add_argument("--arch", choices=RESNET_ARCHS, default="resnet50",
                        help="ResNet encoder of the resnet generator (the paper's ResNet-50)")
    parser.add_argument("--encoder-weights", default=None,
                        help="torchvision ImageNet weights for the ResNet encoder: a .pth path, or "
                             "'imagenet' to use torchvision's cache (never downloads)")
    parser.add_argument("--ngf", type=int, default=64, help="U-Net base width")
    parser.add_argument("--crop", type=int, default=256,
                        help="training crop = working size (a power of two for the U-Net)")
    parser.add_argument("--discriminator", choices=("patch", "global"), default="patch")
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--gan-loss", choices=("bce", "lsgan"), default="bce")
    parser.add_argument("--l1-weight", type=float, default=100.0)
    parser.add_argument("--colour-loss", choices=("l1", "bins"), default="l1",
                        help="l1: regress a*b* (pix2pix); bins: rebalanced cross-entropy over "
                             "a*b* bins (Zhang et al. 2016), the discriminator seeing the "
                             "annealed mean")
    parser.add_argument("--bin-weight", type=float, default=10.0,
                        help="weight of the bin cross-entropy (--colour-loss bins)")
    parser.add_argument("--real-label", type=float, default=0.9, help="one-sided label smoothing")
    parser.add_argument("--label-noise", type=float, default=0.05,
                        help="probability of flipping each discriminator label")
    parser.add_argument("--decay-epochs", type=int, default=0,
                        help="pix2pix schedule: learning rates of both nets fall linearly to 0 "
                             "over the last N epochs (0: constant)")
    parser.set_defaults(lr=2e-4, batch_size=16, epochs=20)


def load_encoder_weights(spec: str | None, arch: str) -> dict[str, torch.Tensor] | None:
    """ImageNet weights for the ResNet encoder: a local file, or torchvision's cache only."""
    if not spec:
        return None
    if spec == "imagenet":
        import torchvision
        from torch.hub import get_dir

        enum = torchvision.models.get_model_weights(arch).DEFAULT
        cached = Path(get_dir()) / "checkpoints" / Path(enum.url).name
        if not cached.exists():
            raise InputError(f"{arch} ImageNet weights are not in torch's cache ({cached}); "
                             f"download them yourself and pass the file with --encoder-weights")
        spec = str(cached)
    return read_torch_state(spec, "encoder weights")


class LinearDecay:
    """pix2pix's schedule for both optimizers: constant, then linear to 0 over the last
    `decay` of `epochs` epochs. Stepped once per epoch by the training loop."""

    def __init__(self, optimizers: list[torch.optim.Optimizer], lr: float, epochs: int,
                 decay: int) -> None:
        self.optimizers, self.lr, self.epochs, self.decay = optimizers, lr, epochs, decay
        self.epoch = 0

    def factor(self) -> float:
        if self.decay <= 0:
            return 1.0
        return min(1.0, max(0.0, (self.epochs - self.epoch) / self.decay))

    def step(self) -> None:
        self.epoch += 1
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = self.lr * self.factor()

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = state["epoch"]


class GAN(nn.Module):
    """Generator and discriminator together, so one checkpoint holds both."""

    def __init__(self, g: nn.Module, d: nn.Module) -> None:
        super().__init__()
        self.g, self.d = g, d


class CGANTask:
    name = "cgan"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.bins = getattr(args, "colour_loss", "l1") == "bins"
        self.centres = torch.from_numpy(colour_bins.in_gamut_bins()) if self.bins else None
        self.bin_weights: torch.Tensor | None = None
        self.cfg = GeneratorConfig(kind=args.generator, working_size=args.crop, ngf=args.ngf,
                                   arch=args.arch, colour_head="bins" if self.bins else "regress",
                                   num_bins=len(self.centres) if self.bins else 0)
        if args.generator == "unet":
            from .model import depth_for
            try:
                depth_for(args.crop)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        elif args.crop % 32:
            raise InputError(f"--crop must be a multiple of 32 for the resnet generator; got {args.crop}")
        self.d_opt: torch.optim.Optimizer | None = None
        self.d_scaler: torch.amp.GradScaler | None = None
        self.fine_tuning = False

    def adopt_config(self, config: dict[str, Any]) -> None:
        """Fine-tuning: rebuild the base weights' generator (kind, size, encoder, bins); the
        discriminator starts fresh, the colour-bin prior comes with the generator's tensors."""
        try:
            self.cfg = GeneratorConfig(**config)
        except TypeError as exc:
            raise InputError(f"--from: the weights' configuration is not a cgan generator's "
                             f"({exc})") from None
        self.args.generator, self.args.crop = self.cfg.kind, self.cfg.working_size
        self.args.arch, self.args.encoder_weights = self.cfg.arch, None
        self.bins = self.cfg.colour_head == "bins"
        self.centres = torch.from_numpy(colour_bins.in_gamut_bins()) if self.bins else None
        self.fine_tuning = True

    def build_model(self) -> GAN:
        enc = load_encoder_weights(self.args.encoder_weights, self.args.arch) \
            if self.args.generator == "resnet" else None
        g = build_generator(self.cfg, enc)
        if self.bins:
            g.bin_centres.copy_(self.centres)
            if self.bin_weights is not None:
                g.bin_weights.copy_(self.bin_weights)
        return GAN(g, build_discriminator(self.args.discriminator, self.args.ndf))

    def config_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def export(self, model: GAN) -> nn.Module:
        """What the weights file holds: the generator only."""
        return model.g

    def datasets(self, train: list[Path], val: list[Path], cfg: TrainConfig):
        steps = cfg.steps_per_epoch or 50
        kw = {"cache_side": self.args.crop * 2}
        train_ds = PhotoDataset(train, self.args.crop, samples_per_epoch=steps * cfg.batch_size, **kw)
        val_ds = PhotoDataset(val, self.args.crop, train=False, **kw) if val else None
        if self.bins and not self.fine_tuning:
            self.bin_weights = colour_bins.prior_from_photos(train_ds.images, self.centres)
        return train_ds, val_ds

    def optimizer(self, model: GAN, cfg: TrainConfig):
        betas = (0.5, 0.999)
        self.d_opt = torch.optim.Adam(model.d.parameters(), lr=cfg.lr, betas=betas)
        cuda = next(model.parameters()).device.type == "cuda"
        self.d_scaler = torch.amp.GradScaler("cuda", enabled=cuda and cfg.amp)
        g_opt = torch.optim.Adam(model.g.parameters(), lr=cfg.lr, betas=betas)
        return g_opt, LinearDecay([g_opt, self.d_opt], cfg.lr, cfg.epochs, self.args.decay_epochs)

    def ddp_wrap(self, model: GAN, wrap) -> GAN:
        """Under torchrun: each player in its own DDP, so the discriminator's step (taken in
        `loss`) and the generator's (taken by the loop) both see gradients averaged over
        ranks. The returned module shares the parameters of `model`."""
        return GAN(wrap(model.g), wrap(model.d))

    # the discriminator's optimizer travels in the loop's checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {"d_opt": self.d_opt.state_dict() if self.d_opt else None,
                "d_scaler": self.d_scaler.state_dict() if self.d_scaler else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.d_opt is not None and state.get("d_opt"):
            self.d_opt.load_state_dict(state["d_opt"])
        if self.d_scaler is not None and state.get("d_scaler"):
            self.d_scaler.load_state_dict(state["d_scaler"])

    def _gan_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.args.gan_loss == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    def _labels(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        value = self.args.real_label if real else 0.0
        labels = torch.full_like(logits, value, dtype=torch.float32)
        if self.args.label_noise > 0:
            flip = torch.rand_like(labels) < self.args.label_noise
            labels = torch.where(flip, (self.args.real_label - labels) if real else
                                 torch.full_like(labels, self.args.real_label), labels)
        return labels

    @staticmethod
    def _lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lab = rgb_to_lab_torch(rgb.float())
        return l_to_unit(lab[:, :1]), ab_to_signed_unit(lab[:, 1:])

    def _generate(self, g: nn.Module, lightness: torch.Tensor, ab: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(a*b* in [-1, 1] for the discriminator, colour loss, logs): L1 on regressed a*b*,
        or bin cross-entropy with the annealed mean as the generated colours."""
        out = g(lightness)
        if not self.bins:
            l1 = F.l1_loss(out.float(), ab)
            return out, l1, {"l1": l1.item()}
        core = g.module if isinstance(g, nn.parallel.DistributedDataParallel) else g
        ce = colour_bins.rebalanced_cross_entropy(out.float(), signed_unit_to_ab(ab),
                                                  core.bin_centres, core.bin_weights)
        fake = ab_to_signed_unit(colour_bins.annealed_mean(out.float(), core.bin_centres,
                                                           self.cfg.temperature))
        return fake, ce, {"bin_ce": ce.item()}

    def loss(self, model: GAN, batch: torch.Tensor):
        lightness, ab = self._lab(batch)
        fake, l1, logs = self._generate(model.g, lightness, ab)
        if not (model.training and torch.is_grad_enabled()):
            # validation: L1 selects the best epoch; chroma spread across images flags collapse
            with torch.no_grad():
                pred_mean = signed_unit_to_ab(fake.float()).mean((2, 3))
                true_mean = signed_unit_to_ab(ab).mean((2, 3))
                logs["spread"] = pred_mean.std(0).norm().item() if len(pred_mean) > 1 else 0.0
                logs["spread_truth"] = true_mean.std(0).norm().item() if len(true_mean) > 1 else 0.0
                logs["chroma"] = signed_unit_to_ab(fake.float()).norm(dim=1).mean().item()
            return l1, logs
        # discriminator step on detached fakes
        assert self.d_opt is not None and self.d_scaler is not None
        self.d_opt.zero_grad(set_to_none=True)
        d_real = model.d(lightness, ab)
        d_fake = model.d(lightness, fake.detach())
        d_loss = 0.5 * (self._gan_loss(d_real, self._labels(d_real, True)) +
                        self._gan_loss(d_fake, self._labels(d_fake, False)))
        self.d_scaler.scale(d_loss).backward()
        self.d_scaler.step(self.d_opt)
        self.d_scaler.update()
        # generator: fool the updated discriminator, stay close in L1 (the discriminator's
        # gradients from this pass are discarded, so under DDP it runs unwrapped: no all-reduce)
        d = model.d.module if isinstance(model.d, nn.parallel.DistributedDataParallel) else model.d
        g_fake = d(lightness, fake)
        adv = self._gan_loss(g_fake, torch.ones_like(g_fake, dtype=torch.float32))
        logs.update(d_loss=d_loss.item(), adv=adv.item(),
                    d_real=torch.sigmoid(d_real.float()).mean().item(),
                    d_fake=torch.sigmoid(d_fake.float()).mean().item())
        weight = self.args.bin_weight if self.bins else self.args.l1_weight
        return adv + weight * l1, logs

    def report(self, val_logs: dict[str, float]) -> str | None:
        """A warning for the validation log when predictions stopped varying between images."""
        spread, truth = val_logs.get("val_spread"), val_logs.get("val_spread_truth")
        if spread is None or not truth:
            return None
        ratio = spread / truth
        if ratio < COLLAPSE_RATIO:
            return (f"possible mode collapse: predicted chroma varies {ratio:.2f}x as much across "
                    f"validation images as the truth (< {COLLAPSE_RATIO})")
        return None

    def samples(self, model: GAN, batch: torch.Tensor) -> list[torch.Tensor]:
        lab = rgb_to_lab_torch(batch.float())
        fake, _, _ = self._generate(model.g, l_to_unit(lab[:, :1]), ab_to_signed_unit(lab[:, 1:]))
        ab = signed_unit_to_ab(fake.float())
        gray = lab_to_rgb_torch(torch.cat([lab[:, :1], torch.zeros_like(ab)], 1))
        return [gray, lab_to_rgb_torch(torch.cat([lab[:, :1], ab], 1)), batch]


def make_task(args: argparse.Namespace) -> CGANTask:
    return CGANTask(args)
