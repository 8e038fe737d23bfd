"""Zhang, Isola & Efros (ECCV 2016), "Colorful Image Colorization": the network as its
authors publish it (github richzhang/colorization, ``colorizers/eccv16.py``).

A VGG-style stack of eight conv blocks (``model1``..``model8``, nn.Sequential with the
conv/BatchNorm layers at the indices of the original file) predicts a distribution over
313 quantised a*b* bins at 1/4 resolution; ``model_out`` (a fixed 1x1 conv, 313 -> 2, no
bias) takes its expectation after a softmax, and the result is upsampled x4 bilinearly and
scaled by 110. Input: L* in [0, 100], (B, 1, H, W), H and W multiples of 8 (256 x 256 in
the authors' pipeline). Output: a*b* (B, 2, H, W).
"""
from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn import functional as F

from . import published

L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0
N_BINS = 313


def conv_block(widths: list[int], *, first_stride: int = 1, last_stride: int = 1,
               dilation: int = 1, batchnorm: bool = True) -> list[nn.Module]:
    """conv3x3 + ReLU for each step of `widths`, then BatchNorm (the original's layout)."""
    layers: list[nn.Module] = []
    n = len(widths) - 1
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
        stride = last_stride if i == n - 1 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation),
                   nn.ReLU(True)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(widths[-1]))
    return layers


class ECCV16(nn.Module):
    """The eccv16 generator; state-dict keys equal the published file's."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*conv_block([1, 64, 64], last_stride=2))
        self.model2 = nn.Sequential(*conv_block([64, 128, 128], last_stride=2))
        self.model3 = nn.Sequential(*conv_block([128, 256, 256, 256], last_stride=2))
        self.model4 = nn.Sequential(*conv_block([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*conv_block([512, 512, 512, 512]))
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1), nn.ReLU(True),
            *conv_block([256, 256, 256], batchnorm=False),
            nn.Conv2d(256, N_BINS, 1))
        self.model_out = nn.Conv2d(N_BINS, 2, 1, bias=False)

    def forward(self, input_l: torch.Tensor) -> torch.Tensor:
        x = (input_l - L_CENT) / L_NORM
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5,
                      self.model6, self.model7, self.model8):
            x = block(x)
        ab = self.model_out(torch.softmax(x, dim=1))
        return F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False) * AB_NORM


def build() -> ECCV16:
    """A randomly initialised eccv16 network (load weights with `load_published`)."""
    return ECCV16()


def load_published(net: ECCV16, path: str | os.PathLike) -> ECCV16:
    """Load ``colorization_release_v2-9b330a0b.pth`` (a bare state dict) strictly."""
    return published.load_file(net, path, layout="state_dict")
