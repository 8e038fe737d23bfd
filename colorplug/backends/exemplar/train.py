"""Training `exemplar`, in two stages (`--stage`).

`similarity`: the ResNet-34 learns features for correspondence without labels. Each crop's
L is warped by a random affine map (scale, rotation, shift) and photometrically jittered
(gamma, contrast, noise, blur); the true correspondence is known from the map, and an
InfoNCE loss at every level makes the feature at a position of the warped view closest to
the feature at its true position in the original, among all positions. Validation
measures what the backend relies on: the fraction of nearest-neighbour-field matches
(3x3 patches, exact search) within one cell of the truth, per level (`val_acc0`..`val_acc4`).

`color`: with the similarity network frozen, the U-Net learns a*b* from L + warped
reference colours + similarity maps. Each sample pairs a target crop with another crop
of the same photo as reference; half the samples get the reference's colours warped
T<-R, half the target's own colours warped twice, T->R->T (as in He et al.), so warping
errors are seen with a known truth. Loss: chrominance MSE + alpha * perceptual MSE (deep
features of an RGB network: torchvision VGG-19 up to relu3_1 with weights you give, or
else the same network frozen at a fixed random initialisation; see the model card).
"""
from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...color import lab_to_rgb_torch, rgb_to_lab_torch
from ...errors import InputError
from ...nnf import nearest_neighbor_field, warp
from ...train import PhotoDataset, TrainConfig
from ...weights import load_into, read_torch_state
from .colorizer import build_input, load_similarity
from .correspond import correspond, warp_ab
from .model import AB_NORM, ColorNet, ColorNetConfig, SimilarityNet

TAU = 0.07
QUERIES = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", choices=("similarity", "color"), default="color")
    parser.add_argument("--crop", type=int, default=128, help="training crop (multiple of 32)")
    parser.add_argument("--similarity", default=None,
                        help="color stage: similarity weights (default: the shipped ones); "
                             "'torchvision:PATH' for a torchvision ResNet-34 file")
    parser.add_argument("--init", default=None,
                        help="similarity stage: start from torchvision ResNet-34 weights (PATH)")
    parser.add_argument("--alpha", type=float, default=0.05, help="weight of the perceptual loss")
    parser.add_argument("--perceptual-weights", default=None,
                        help="torchvision VGG-19 weights (.pth) for the perceptual loss")
    parser.add_argument("--base", type=int, default=32, help="colour U-Net base width")
    parser.add_argument("--warmup", type=int, default=100, help="learning-rate warm-up steps")
    parser.set_defaults(lr=1e-3, batch_size=16, epochs=20)


# ----------------------------------------------------------------------------- shared
def warmup_adamw(params, cfg: TrainConfig, warmup: int):
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, warmup)))
    sched.per_step = True
    return opt, sched


def random_affine(n: int, gen: torch.Generator | None = None, device: Any = "cpu") -> torch.Tensor:
    """[n, 2, 3] maps from a warped view's normalized coords to the original's."""
    def u(lo, hi):
        return torch.rand(n, generator=gen) * (hi - lo) + lo
    scale = torch.exp(u(math.log(0.75), math.log(1.3)))
    angle = u(-0.35, 0.35)
    shear = u(-0.1, 0.1)
    tx, ty = u(-0.2, 0.2), u(-0.2, 0.2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, tx], -1),
                         torch.stack([sin, cos, ty], -1)], 1)
    return theta.to(device)


def photometric(lightness: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Gamma, contrast, brightness, blur and noise on L* [0, 100]."""
    n = lightness.shape[0]
    r = lambda lo, hi: (torch.rand(n, 1, 1, 1, generator=gen) * (hi - lo) + lo).to(lightness.device)
    x = (lightness / 100).clamp(0, 1) ** r(0.7, 1.4)
    x = (x - 0.5) * r(0.7, 1.3) + 0.5 + r(-0.1, 0.1)
    if torch.rand(1, generator=gen).item() < 0.5:
        k = torch.tensor([1.0, 2.0, 1.0], device=x.device)
        k = (k[:, None] * k[None]) / 16
        x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.view(1, 1, 3, 3))
    x = x + torch.randn(x.shape, generator=gen).to(x.device) * r(0.0, 0.03)
    return x.clamp(0, 1) * 100


def true_cells(theta: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each cell of a warped view's h x w feature grid: the original's cell (y, x) and
    whether it lies inside the original."""
    grid = F.affine_grid(theta, (theta.shape[0], 1, h, w), align_corners=False)  # (x, y)
    valid = (grid.abs() < 1).all(-1)
    x = ((grid[..., 0] + 1) / 2 * w).floor().clamp(0, w - 1).long()
    y = ((grid[..., 1] + 1) / 2 * h).floor().clamp(0, h - 1).long()
    return torch.stack([y, x], -1), valid


def make_pair(lightness: torch.Tensor, gen: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    theta = random_affine(lightness.shape[0], gen, lightness.device)
    grid = F.affine_grid(theta, lightness.shape, align_corners=False)
    warped = F.grid_sample(lightness, grid, mode="bilinear", padding_mode="border",
                           align_corners=False)
    return photometric(warped, gen), theta


def match_accuracy(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor], theta: torch.Tensor
                   ) -> list[float]:
    """Per level: fraction of the warped view's valid cells whose exact 3x3-patch match in
    the original lies within one cell (Chebyshev) of the true position."""
    out = []
    for fa, fb in zip(feats_a, feats_b):
        h, w = fb.shape[-2:]
        truth, valid = true_cells(theta, h, w)
        idx, _ = nearest_neighbor_field(fb.float(), fa.float(), method="exact")
        ok = ((idx - truth).abs().max(-1).values <= 1) & valid
        out.append(ok.sum().item() / max(1, valid.sum().item()))
    return out


# ------------------------------------------------------------------------ similarity
class SimilarityTask:
    name = "exemplar"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def build_model(self) -> SimilarityNet:
        net = SimilarityNet()
        if self.args.init:
            net.load_torchvision(read_torch_state(self.args.init, "--init ResNet-34 weights"))
        return net

    def config_dict(self) -> dict[str, Any]:
        return {"network": "resnet34", "stage": "similarity"}

    def datasets(self, train: list[Path], val: list[Path], cfg: TrainConfig):
        steps = cfg.steps_per_epoch or 50
        crop = self.args.crop
        return (PhotoDataset(train, crop, samples_per_epoch=steps * cfg.batch_size,
                             cache_side=crop * 2),
                PhotoDataset(val, crop, train=False, cache_side=crop * 2) if val else None)

    def optimizer(self, model: nn.Module, cfg: TrainConfig):
        return warmup_adamw(model.parameters(), cfg, self.args.warmup)

    def loss(self, model: SimilarityNet, batch: torch.Tensor):
        training = model.training and torch.is_grad_enabled()
        gen = None if training else torch.Generator().manual_seed(int(batch.sum().item() * 7) % 2**31)
        lightness = rgb_to_lab_torch(batch.float())[:, :1]
        warped, theta = make_pair(lightness, gen)
        fa, fb = model(lightness), model(warped)
        total = lightness.new_zeros(())
        logs: dict[str, float] = {}
        for k, (a, b) in enumerate(zip(fa, fb)):
            n, c, h, w = b.shape
            truth, valid = true_cells(theta, h, w)
            target = (truth[..., 0] * w + truth[..., 1]).view(n, -1)
            valid = valid.view(n, -1)
            q = torch.randint(0, h * w, (n, min(QUERIES, h * w)), generator=gen).to(b.device)
            qb = F.normalize(b.float().flatten(2), dim=1)
            qb = torch.gather(qb, 2, q[:, None].expand(-1, c, -1))             # [n, c, Q]
            keys = F.normalize(a.float().flatten(2), dim=1)                     # [n, c, hw]
            logits = torch.einsum("ncq,nck->nqk", qb, keys) / TAU
            tq = torch.gather(target, 1, q)
            vq = torch.gather(valid, 1, q)
            if vq.any():
                ce = F.cross_entropy(logits[vq], tq[vq])
                total = total + ce
                logs[f"nce{k}"] = ce.item()
        if not training:
            for k, acc in enumerate(match_accuracy(fa, fb, theta)):
                logs[f"acc{k}"] = acc
        return total, logs

    def samples(self, model: SimilarityNet, batch: torch.Tensor) -> list[torch.Tensor]:
        """Original L, warped view, and the warped view rebuilt from the original's pixels at
        the level-1 matches (good features: the rebuild looks like the warped view)."""
        gen = torch.Generator().manual_seed(0)
        lightness = rgb_to_lab_torch(batch.float())[:, :1]
        warped, _ = make_pair(lightness, gen)
        fa, fb = model(lightness), model(warped)
        idx, _ = nearest_neighbor_field(fb[1].float(), fa[1].float(), method="exact")
        small = F.interpolate(lightness, size=fa[1].shape[-2:], mode="area")
        rebuilt = F.interpolate(warp(small, idx), size=lightness.shape[-2:], mode="nearest")
        gray = lambda x: (x / 100).clamp(0, 1).expand(-1, 3, -1, -1)
        return [gray(lightness), gray(rebuilt), gray(warped)]


# ----------------------------------------------------------------------------- color
class PairPhotos(PhotoDataset):
    """(2, 3, S, S): a target crop and another crop of the same photo as its reference."""

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.train:
            return torch.stack([super().__getitem__(index), super().__getitem__(index)])
        state = random.getstate()
        random.seed(index)
        try:
            target = super().__getitem__(index)       # the whole photo
            self.train = True
            reference = super().__getitem__(index)    # a seeded random crop of it
        finally:
            self.train = False
            random.setstate(state)
        return torch.stack([target, reference])


class PerceptualNet(nn.Module):
    """VGG-19 up to relu3_1 on ImageNet-normalized RGB; frozen."""

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        import torchvision

        # the random stand-in is the same network every run, without resetting the
        # training's own random stream (fork_rng restores it afterwards)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            vgg = torchvision.models.vgg19(weights=None)
        if weights:
            state = read_torch_state(weights, "--perceptual-weights")
            load_into(vgg, state, source=repr(weights))
        self.features = vgg.features[:12].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.features((rgb - self.mean) / self.std)


class ColorTask:
    name = "exemplar"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        if args.crop % 32:
            raise InputError(f"--crop must be a multiple of 32; got {args.crop}")
        self.cfg = ColorNetConfig(base=args.base)
        self.similarity: SimilarityNet | None = None
        self.perceptual: PerceptualNet | None = None

    def build_model(self) -> ColorNet:
        net, meta = load_similarity(self.args.similarity)
        self.similarity = net.eval().requires_grad_(False)
        self.perceptual = PerceptualNet(self.args.perceptual_weights)
        return ColorNet(self.cfg)

    def config_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def datasets(self, train: list[Path], val: list[Path], cfg: TrainConfig):
        steps = cfg.steps_per_epoch or 50
        crop = self.args.crop
        return (PairPhotos(train, crop, samples_per_epoch=steps * cfg.batch_size,
                           cache_side=crop * 2, scale=(0.3, 1.0)),
                PairPhotos(val, crop, train=False, cache_side=crop * 2, scale=(0.3, 1.0))
                if val else None)

    def optimizer(self, model: nn.Module, cfg: TrainConfig):
        return warmup_adamw(model.parameters(), cfg, self.args.warmup)

    def _inputs(self, model: ColorNet, batch: torch.Tensor, double_warp: bool):
        dev = batch.device
        self.similarity.to(dev)
        self.perceptual.to(dev)
        lab_t = rgb_to_lab_torch(batch[:, 0].float())
        lab_r = rgb_to_lab_torch(batch[:, 1].float())
        with torch.no_grad():
            ft, fr = self.similarity(lab_t[:, :1]), self.similarity(lab_r[:, :1])
            corr = correspond(ft, fr)
            size_t, size_r = ft[0].shape[-2:], fr[0].shape[-2:]
            truth = F.interpolate(lab_t[:, 1:], size=size_t, mode="area")
            warped = warp_ab(lab_r[:, 1:], corr.t_to_r, size_r)
            if double_warp:
                # the target's own colours T->R->T; half the batch, chosen at random
                twice = warp(warp(truth, corr.r_to_t), corr.t_to_r)
                pick = (torch.rand(len(batch), 1, 1, 1, device=dev) < 0.5)
                warped = torch.where(pick, twice, warped)
        x = build_input(lab_t[:, :1], warped, corr.similarities)
        return x, truth, warped, lab_t

    def loss(self, model: ColorNet, batch: torch.Tensor):
        training = model.training and torch.is_grad_enabled()
        x, truth, warped, lab_t = self._inputs(model, batch, double_warp=training)
        pred = model(x).float()
        chroma = F.mse_loss(pred, truth / AB_NORM)
        small_l = x[:, :1].add(1).mul(50)
        rgb_pred = lab_to_rgb_torch(torch.cat([small_l, pred * AB_NORM], 1))
        rgb_true = lab_to_rgb_torch(torch.cat([small_l, truth], 1))
        perceptual = F.mse_loss(self.perceptual(rgb_pred), self.perceptual(rgb_true))
        logs = {"chroma": chroma.item(), "perceptual": perceptual.item()}
        if not training:
            logs["warp_chroma"] = F.mse_loss(warped / AB_NORM, truth / AB_NORM).item()
        return chroma + self.args.alpha * perceptual, logs

    def samples(self, model: ColorNet, batch: torch.Tensor) -> list[torch.Tensor]:
        x, truth, warped, lab_t = self._inputs(model, batch, double_warp=False)
        pred = model(x).float() * AB_NORM
        size = batch.shape[-2:]
        up = lambda ab: F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
        rgb = lambda ab: lab_to_rgb_torch(torch.cat([lab_t[:, :1], up(ab)], 1))
        return [batch[:, 1].float(), rgb(warped), rgb(pred), batch[:, 0].float()]


def make_task(args: argparse.Namespace):
    return SimilarityTask(args) if args.stage == "similarity" else ColorTask(args)
