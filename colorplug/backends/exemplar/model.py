"""Networks of the exemplar backend (deep exemplar-based colorization, He et al. 2018).

- `SimilarityNet`: torchvision's ResNet-34 on the L channel (repeated to 3 channels,
  ImageNet-normalized so that torchvision ImageNet weights can be loaded as they are); five
  feature levels: conv1 (stride 2, 64 ch), layer1 (4, 64), layer2 (8, 128), layer3 (16, 256),
  layer4 (32, 512).
- `ColorNet`: a U-Net from 13 channels (L, the reference's warped a*b*, and for each of the
  five levels the T->R similarity and the bidirectional T->R->T similarity) to a*b*/110,
  predicted as a correction added to the warped colours (zero-initialised output layer).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ...errors import WeightsError

AB_NORM = 110.0
LEVELS = 5
IN_CHANNELS = 1 + 2 + 2 * LEVELS  # 13


class SimilarityNet(nn.Module):
    """L* in [0, 100] (N, 1, H, W) -> five feature maps, strides 2, 4, 8, 16, 32."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        net = torchvision.models.resnet34(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (net.layer1, net.layer2, net.layer3,
                                                              net.layer4)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, lightness: torch.Tensor) -> list[torch.Tensor]:
        x = (lightness / 100.0).expand(-1, 3, -1, -1)
        x = (x - self.mean) / self.std
        c1 = self.relu(self.bn1(self.conv1(x)))
        l1 = self.layer1(self.maxpool(c1))
        l2 = self.layer2(l1)
        l3 = self.layer3(l2)
        return [c1, l1, l2, l3, self.layer4(l3)]

    def load_torchvision(self, state: dict[str, torch.Tensor]) -> None:
        """Load a torchvision ResNet-34 state dict (its `fc.*` classifier is dropped; every
        other key must match exactly)."""
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        own = self.state_dict()
        wrong = [k for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
        if wrong:
            raise WeightsError(f"not torchvision ResNet-34 weights: shape mismatch in "
                               f"{', '.join(wrong[:5])}")
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsError(f"not torchvision ResNet-34 weights: missing {sorted(missing)[:5]}, "
                               f"unexpected {sorted(unexpected)[:5]}")


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


@dataclass(frozen=True)
class ColorNetConfig:
    base: int = 32
    depth: int = 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ColorNet(nn.Module):
    """U-Net: 13 channels in, a*b*/110 out; H and W multiples of 2**depth."""

    def __init__(self, cfg: ColorNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ColorNetConfig()
        widths = [cfg.base * 2 ** i for i in range(cfg.depth + 1)]
        self.enc = nn.ModuleList([_double_conv(IN_CHANNELS, widths[0])] +
                                 [_double_conv(widths[i], widths[i + 1]) for i in range(cfg.depth)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2)
                                 for i in reversed(range(cfg.depth))])
        self.dec = nn.ModuleList([_double_conv(widths[i] * 2, widths[i])
                                  for i in reversed(range(cfg.depth))])
        self.out = nn.Conv2d(widths[0], 2, 1)
        nn.init.zeros_(self.out.weight)   # starts as the identity on the warped colours
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        warped = x[:, 1:3]
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], 1))
        # a correction of the warped colours: the network starts where the warp is and
        # learns where to trust, smooth or replace it
        return (warped + self.out(x)).clamp(-1, 1)
