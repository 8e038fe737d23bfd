"""Networks of the cGAN backend ("Image Colorization Using Conditional GANs"; pix2pix).

Lab convention: L in [-1, 1] (L/50 - 1), a*b* in [-1, 1] (a*b*/110); every generator maps
(N, 1, H, W) L to (N, 2, H, W) a*b* through tanh.
- `UNetGenerator`: pix2pix U-Net, 4x4 stride-2 convs down to 1x1 at the training size, skip
  connections, dropout in the three innermost decoder blocks. `depth` levels need H and W
  multiples of 2**depth.
- `ResNetGenerator`: a torchvision ResNet encoder (L repeated to 3 channels) with a decoder
  of upsampling + 3x3 conv blocks fed by skips from each ResNet stage; H, W multiples of 32.
- `PatchDiscriminator`: conditional PatchGAN on (L, a*b*), 70x70 receptive field at
  n_layers=3. `GlobalDiscriminator`: one real/fake logit per image (the paper's first try).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from ...weights import load_into

AB_NORM = 110.0
RESNET_ARCHS = ("resnet18", "resnet34", "resnet50")


def l_to_unit(lightness: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] -> [-1, 1]."""
    return lightness / 50.0 - 1.0


def ab_to_signed_unit(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_NORM


def signed_unit_to_ab(u: torch.Tensor) -> torch.Tensor:
    return u * AB_NORM


def depth_for(working_size: int) -> int:
    """U-Net depth that takes `working_size` down to 1x1 (pix2pix: 8 for 256), at most 8."""
    if working_size < 16 or working_size & (working_size - 1):
        raise ValueError(f"U-Net working size must be a power of two >= 16; got {working_size}")
    return min(8, int(math.log2(working_size)))


@dataclass(frozen=True)
class GeneratorConfig:
    """What the shipped weights need to rebuild their generator."""

    kind: str = "unet"            # "unet" | "resnet"
    working_size: int = 256       # longest side chroma is predicted at
    ngf: int = 64                 # U-Net base width
    arch: str = "resnet50"        # ResNet encoder
    decoder_width: int = 256      # ResNet decoder: channels of its first block
    colour_head: str = "regress"  # "regress": tanh a*b*; "bins": logits over a*b* bins
    num_bins: int = 0
    temperature: float = 0.38     # bins: default annealed-mean temperature
    saturation: float = 1.0       # bins: default chroma gain
    steering: float = 0.0          # default confidence steering of the saturation (bins)

    @property
    def multiple(self) -> int:
        return 2 ** depth_for(self.working_size) if self.kind == "unet" else 32

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_generator(cfg: GeneratorConfig, encoder_weights: Any = None) -> nn.Module:
    if cfg.colour_head not in ("regress", "bins"):
        raise ValueError(f"colour_head must be 'regress' or 'bins'; got {cfg.colour_head!r}")
    bins = cfg.colour_head == "bins"
    out = cfg.num_bins if bins else 2
    if cfg.kind == "unet":
        net: nn.Module = UNetGenerator(depth_for(cfg.working_size), cfg.ngf, out_channels=out,
                                       tanh=not bins)
    elif cfg.kind == "resnet":
        net = ResNetGenerator(cfg.arch, cfg.decoder_width, encoder_weights=encoder_weights,
                              out_channels=out, tanh=not bins)
    else:
        raise ValueError(f"unknown generator {cfg.kind!r}; choose 'unet' or 'resnet'")
    return BinsGenerator(net, cfg.num_bins) if bins else net


class BinsGenerator(nn.Module):
    """A generator predicting a*b* bin logits, with its bins and training prior as buffers
    (so they travel with the weights); `colorplug.colour_bins` decodes them."""

    def __init__(self, net: nn.Module, num_bins: int) -> None:
        super().__init__()
        if num_bins < 2:
            raise ValueError("colour_head='bins' needs num_bins >= 2")
        self.net = net
        self.register_buffer("bin_centres", torch.zeros(num_bins, 2))
        self.register_buffer("bin_weights", torch.ones(num_bins))

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.net(lightness)


class UNetGenerator(nn.Module):
    def __init__(self, depth: int = 8, ngf: int = 64, out_channels: int = 2,
                 tanh: bool = True) -> None:
        super().__init__()
        if depth < 4:
            raise ValueError("U-Net depth must be at least 4")
        self.depth = depth
        widths = [min(ngf * 2 ** i, ngf * 8) for i in range(depth)]
        self.down = nn.ModuleList()
        c_in = 1
        for i, c in enumerate(widths):
            layers: list[nn.Module] = []
            if i > 0:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
            layers.append(nn.Conv2d(c_in, c, 4, 2, 1, bias=i in (0, depth - 1)))
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(c))
            self.down.append(nn.Sequential(*layers))
            c_in = c
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            c_out = widths[i - 1] if i > 0 else out_channels
            c_up_in = widths[i] if i == depth - 1 else widths[i] * 2
            layers = [nn.ReLU(inplace=True), nn.ConvTranspose2d(c_up_in, c_out, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
                if i >= depth - 3:
                    layers.append(nn.Dropout(0.5))
            elif tanh:
                layers.append(nn.Tanh())
            self.up.append(nn.Sequential(*layers))

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        skips = []
        x = lightness
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[0](skips[-1])
        for block, skip in zip(self.up[1:], reversed(skips[:-1])):
            x = block(torch.cat([x, skip], 1))
        return x


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class ResNetGenerator(nn.Module):
    """ResNet encoder (stem + 4 stages, stride 32) and an upsampling decoder with skips."""

    def __init__(self, arch: str = "resnet50", decoder_width: int = 256,
                 encoder_weights: Any = None, out_channels: int = 2, tanh: bool = True) -> None:
        super().__init__()
        import torchvision

        if arch not in RESNET_ARCHS:
            raise ValueError(f"unknown ResNet {arch!r}; choose one of {', '.join(RESNET_ARCHS)}")
        net = getattr(torchvision.models, arch)(weights=None)
        if encoder_weights is not None:  # torchvision ImageNet weights: strict, clear errors
            load_into(net, encoder_weights, source=f"for the {arch} encoder")
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)          # /2, 64
        self.pool = net.maxpool                                           # /4
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        expansion = 4 if arch == "resnet50" else 1
        enc = [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]
        skips = [enc[2], enc[1], enc[0], 64]                              # /16, /8, /4, /2
        d = decoder_width
        widths = [d, d // 2, d // 4, d // 8, d // 8]
        self.decoder = nn.ModuleList()
        c_in = enc[3]
        for i in range(4):
            self.decoder.append(_block(c_in + skips[i], widths[i]))
            c_in = widths[i]
        self.final = nn.Sequential(_block(c_in + 1, widths[4]),
                                   nn.Conv2d(widths[4], out_channels, 3, 1, 1),
                                   *([nn.Tanh()] if tanh else []))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        x = ((lightness + 1) / 2).expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std                # ImageNet statistics, as torchvision weights expect
        s2 = self.stem(x)
        feats = []
        y = self.pool(s2)
        for stage in self.stages:
            y = stage(y)
            feats.append(y)
        skips = [feats[2], feats[1], feats[0], s2]
        y = feats[3]
        for block, skip in zip(self.decoder, skips):
            y = F.interpolate(y, size=skip.shape[-2:], mode="nearest")
            y = block(torch.cat([y, skip], 1))
        y = F.interpolate(y, size=lightness.shape[-2:], mode="bilinear", align_corners=False)
        return self.final(torch.cat([y, lightness], 1))


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: C64-C128-C256 (stride 2), C512 (stride 1), 1-channel map.

    n_layers=3 gives each output a 70x70 receptive field.
    """

    def __init__(self, ndf: int = 64, n_layers: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = ndf
        for i in range(1, n_layers + 1):
            c_out = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c, c_out, 4, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.LeakyReLU(0.2, True)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([lightness, ab], 1))


class GlobalDiscriminator(nn.Module):
    """One logit per image: strided convs, global average pooling, a linear layer."""

    def __init__(self, ndf: int = 64, n_layers: int = 5, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i in range(n_layers):
            c_out = ndf * min(2 ** i, 8)
            layers += [nn.Conv2d(c, c_out, 4, 2, 1, bias=i == 0)]
            if i:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, True))
            c = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, 1)

    def forward(self, lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        x = self.features(torch.cat([lightness, ab], 1))
        return self.head(x.mean((2, 3)))


def build_discriminator(kind: str, ndf: int = 64) -> nn.Module:
    if kind == "patch":
        return PatchDiscriminator(ndf)
    if kind == "global":
        return GlobalDiscriminator(ndf)
    raise ValueError(f"unknown discriminator {kind!r}; choose 'patch' or 'global'")
