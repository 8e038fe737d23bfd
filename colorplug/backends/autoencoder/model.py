"""The autoencoder of the project's first seed paper, layer for layer.

Encoder: 32x32x1 -> conv3x3 s2 64 -> 128 -> 256 (ReLU) -> flatten 4096 -> dense 256.
Decoder: dense 4096 -> 4x4x256 -> transposed conv3x3 s2 256 -> 128 -> 64 (ReLU)
-> conv3x3 to 3 channels, sigmoid (RGB). 1,418,496 + 2,013,315 parameters.
`variant` selects the paper's ablations: "none" (its final choice), "dropout", "dropout_bn".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

VARIANTS = ("none", "dropout", "dropout_bn")


@dataclass(frozen=True)
class AutoencoderConfig:
    size: int = 32
    latent: int = 256
    variant: str = "none"
    dropout: float = 0.2

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}; got {self.variant!r}")
        if self.size % 8:
            raise ValueError("size must be a multiple of 8")

    def to_dict(self) -> dict:
        return asdict(self)


def _block(conv: nn.Module, channels: int, cfg: AutoencoderConfig) -> list[nn.Module]:
    layers = [conv]
    if cfg.variant == "dropout_bn":
        layers.append(nn.BatchNorm2d(channels))
    layers.append(nn.ReLU(inplace=True))
    if cfg.variant in ("dropout", "dropout_bn"):
        layers.append(nn.Dropout2d(cfg.dropout))
    return layers


class Encoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c in (64, 128, 256):
            layers += _block(nn.Conv2d(c_in, c, 3, stride=2, padding=1), c, cfg)
            c_in = c
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(256 * (cfg.size // 8) ** 2, cfg.latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


class Decoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.side = cfg.size // 8
        self.fc = nn.Linear(cfg.latent, 256 * self.side ** 2)
        layers: list[nn.Module] = []
        c_in = 256
        for c in (256, 128, 64):
            up = nn.ConvTranspose2d(c_in, c, 3, stride=2, padding=1, output_padding=1)
            layers += _block(up, c, cfg)
            c_in = c
        layers += [nn.Conv2d(64, 3, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, 256, self.side, self.side))


class Autoencoder(nn.Module):
    """L in [0, 1] (N, 1, S, S) -> sRGB in [0, 1] (N, 3, S, S)."""

    def __init__(self, cfg: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or AutoencoderConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)

    def forward(self, lightness01: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(lightness01))
