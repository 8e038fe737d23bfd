"""The hints network: a U-Net from L*, the hints' a*b* and the hint mask to a*b*, as in
Zhang et al. 2017 ("Real-Time User-Guided Image Colorization with Learned Deep Priors"),
smaller: `base` channels at the top, doubling over `depth` levels. Three more input
channels give the hints spread over the image (their mean colour over cells of 4 to 64 px,
the finest cell that holds a hint winning) and how near the nearest hint is: propagation
the network would otherwise have to learn, so a short CPU training learns where to follow
and where to stop it (edges in L*)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

AB_SCALE = 110.0  # a*b* / AB_SCALE is the network's range (about [-1, 1])
#: L, hint a, hint b, mask, and the hints spread over the image (a, b, how near)
IN_CHANNELS = 7
#: Cell sizes (px) the hints are averaged over to spread them, coarse to fine.
SPREAD_CELLS = (0, 64, 16, 4)  # 0: the whole image


@dataclass(frozen=True)
class GuidedConfig:
    base: int = 24
    depth: int = 4

    @property
    def multiple(self) -> int:
        return 2 ** self.depth

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class GuidedNet(nn.Module):
    """(N, 4, H, W) -> a*b*/AB_SCALE (N, 2, H, W); H and W multiples of 2**depth."""

    def __init__(self, cfg: GuidedConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or GuidedConfig()
        if cfg.base < 1 or not 1 <= cfg.depth <= 6:
            raise ValueError(f"base must be >= 1 and depth 1..6; got {cfg}")
        widths = [cfg.base * 2 ** i for i in range(cfg.depth + 1)]
        self.enc = nn.ModuleList([_double_conv(IN_CHANNELS, widths[0])] +
                                 [_double_conv(widths[i], widths[i + 1]) for i in range(cfg.depth)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2)
                                 for i in reversed(range(cfg.depth))])
        self.dec = nn.ModuleList([_double_conv(widths[i] * 2, widths[i])
                                  for i in reversed(range(cfg.depth))])
        self.out = nn.Conv2d(widths[0], 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for i, block in enumerate(self.enc):
            h = block(h if i == 0 else self.pool(h))
            skips.append(h)
        h = skips.pop()
        for up, dec in zip(self.up, self.dec):
            h = dec(torch.cat([up(h), skips.pop()], 1))
        return torch.tanh(self.out(h))


def spread_hints(hint_ab: torch.Tensor, mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Hints spread over the image -> (a*b* (N, 2, H, W), nearness (N, 1, H, W) in [0, 1]):
    the mean hint colour of the finest cell (SPREAD_CELLS) around each pixel that holds a
    hint; nearness 0 where no hint is anywhere, rising to 1 for 4-px cells."""
    import torch.nn.functional as F

    h, w = hint_ab.shape[-2:]
    filled = torch.zeros_like(hint_ab)
    near = torch.zeros_like(mask)
    for level, cell in enumerate(SPREAD_CELLS):
        size = (1, 1) if cell == 0 else (max(1, -(-h // cell)), max(1, -(-w // cell)))
        num = F.adaptive_avg_pool2d(hint_ab * mask, size)
        den = F.adaptive_avg_pool2d(mask, size)
        num = F.interpolate(num, size=(h, w), mode="bilinear", align_corners=False)
        den = F.interpolate(den, size=(h, w), mode="bilinear", align_corners=False)
        ok = den > 1e-6
        filled = torch.where(ok, num / den.clamp_min(1e-6), filled)
        near = torch.where(ok, torch.full_like(near, (level + 1) / len(SPREAD_CELLS)), near)
    return filled, near


def network_input(lightness: torch.Tensor, hint_ab: torch.Tensor, mask: torch.Tensor
                  ) -> torch.Tensor:
    """L* (N, 1, H, W) in [0, 100], hint a*b* (N, 2, H, W), mask (N, 1, H, W) in {0, 1} ->
    the network's 7 channels (L centred; a*b* scaled and zero where there is no hint; the
    mask; the spread hints and their nearness)."""
    hint_ab = hint_ab * mask
    filled, near = spread_hints(hint_ab, mask)
    return torch.cat([lightness / 100.0 - 0.5, hint_ab / AB_SCALE, mask,
                      filled / AB_SCALE, near], 1)
