"""The colorization network of Iizuka, Simo-Serra & Ishikawa (2016), "Let there be Color!".

All convolutions 3x3, padding 1, batch norm + ReLU, strides instead of pooling.
- Low-level (shared): 64 s2, 128, 128 s2, 256, 256 s2, 512.
- Mid-level: 512, 256 (fully convolutional).
- Global (on the low-level features of the image resized to 224x224): 512 s2, 512,
  512 s2, 512, then fully connected 1024, 512, 256 -> a 256-d global vector.
- Fusion: the global vector replicated at every mid-level location, concatenated with
  the 256 mid-level channels, mixed by a 1x1 conv to 256.
- Colorization: 128, up x2, 64, 64, up x2, 32, then at half the input resolution either
  2 channels with sigmoid: normalized a*b* (``colour_head="regress"``, MSE-trained), or
  Q logits over in-gamut a*b* bins (``colour_head="bins"``, rebalanced cross-entropy;
  `colorplug.colour_bins`), decoded by the annealed mean at ``temperature``.
- Classification head (when trained with labels): fc 512 -> 256 -> classes, from the
  global path's 512-d layer.
`width` multiplies every channel count (a lighter CPU variant).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

AB_SCALE = 128.0  # a*b* in [-128, 128] <-> [0, 1]


def ab_to_unit_interval(ab: torch.Tensor) -> torch.Tensor:
    return (ab / AB_SCALE + 1) / 2


def unit_interval_to_ab(u: torch.Tensor) -> torch.Tensor:
    return (u * 2 - 1) * AB_SCALE


@dataclass(frozen=True)
class FusionConfig:
    width: float = 0.25
    num_classes: int = 0
    global_size: int = 224
    colour_head: str = "regress"   # "regress" | "bins"
    num_bins: int = 0              # Q, for colour_head="bins"
    temperature: float = 0.38      # default annealed-mean temperature (bins)
    saturation: float = 1.0        # default chroma gain after decoding (bins)
    steering: float = 0.0          # default confidence steering of the saturation (bins)

    def c(self, channels: int) -> int:
        return max(8, int(round(channels * self.width)))

    def to_dict(self) -> dict:
        return asdict(self)


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class FusionNet(nn.Module):
    """L in [0, 1]: local (N, 1, H, W), H and W multiples of 8, and global (N, 1, 224, 224)."""

    def __init__(self, cfg: FusionConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or FusionConfig()
        c = cfg.c
        self.low = nn.Sequential(conv(1, c(64), 2), conv(c(64), c(128)), conv(c(128), c(128), 2),
                                 conv(c(128), c(256)), conv(c(256), c(256), 2),
                                 conv(c(256), c(512)))
        self.mid = nn.Sequential(conv(c(512), c(512)), conv(c(512), c(256)))
        self.global_conv = nn.Sequential(conv(c(512), c(512), 2), conv(c(512), c(512)),
                                         conv(c(512), c(512), 2), conv(c(512), c(512)))
        side = cfg.global_size // 32
        self.global_fc1 = nn.Sequential(nn.Linear(c(512) * side * side, c(1024)),
                                        nn.ReLU(inplace=True),
                                        nn.Linear(c(1024), c(512)), nn.ReLU(inplace=True))
        self.global_fc2 = nn.Sequential(nn.Linear(c(512), c(256)), nn.ReLU(inplace=True))
        self.fusion = nn.Sequential(nn.Conv2d(c(256) * 2, c(256), 1), nn.ReLU(inplace=True))
        if cfg.colour_head not in ("regress", "bins"):
            raise ValueError(f"colour_head must be 'regress' or 'bins'; got {cfg.colour_head!r}")
        bins = cfg.colour_head == "bins"
        if bins and cfg.num_bins < 2:
            raise ValueError("colour_head='bins' needs num_bins >= 2")
        out = [nn.Conv2d(c(32), cfg.num_bins, 1)] if bins else \
            [nn.Conv2d(c(32), 2, 3, 1, 1), nn.Sigmoid()]
        self.colorize = nn.Sequential(
            conv(c(256), c(128)), nn.Upsample(scale_factor=2, mode="nearest"),
            conv(c(128), c(64)), conv(c(64), c(64)), nn.Upsample(scale_factor=2, mode="nearest"),
            conv(c(64), c(32)), *out)
        if bins:  # the bins and the training prior travel with the weights
            self.register_buffer("bin_centres", torch.zeros(cfg.num_bins, 2))
            self.register_buffer("bin_weights", torch.ones(cfg.num_bins))
        self.classifier = (nn.Sequential(nn.Linear(c(512), c(256)), nn.ReLU(inplace=True),
                                         nn.Linear(c(256), cfg.num_classes))
                           if cfg.num_classes > 0 else None)

    def global_features(self, lightness_global: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(256-d global vector, 512-d layer the classifier reads) for a 224x224 L input."""
        h = self.global_conv(self.low(lightness_global)).flatten(1)
        mid = self.global_fc1(h)
        return self.global_fc2(mid), mid

    def forward(self, lightness: torch.Tensor, lightness_global: torch.Tensor | None = None,
                global_vector: torch.Tensor | None = None):
        """-> (a*b* in [0, 1], or bin logits, at H/2 x W/2; class logits or None)."""
        low = self.low(lightness)
        logits = None
        if global_vector is None:
            if lightness_global is None:
                raise ValueError("give lightness_global (224x224) or a global_vector")
            g_low = low if lightness_global is lightness else self.low(lightness_global)
            h = self.global_conv(g_low).flatten(1)
            mid512 = self.global_fc1(h)
            global_vector = self.global_fc2(mid512)
            if self.classifier is not None:
                logits = self.classifier(mid512)
        local = self.mid(low)
        g = global_vector[:, :, None, None].expand(-1, -1, *local.shape[-2:])
        fused = self.fusion(torch.cat([local, g], 1))
        return self.colorize(fused), logits

