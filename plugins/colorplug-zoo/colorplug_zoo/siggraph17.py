"""Zhang, Zhu, Isola, Geng, Lin, Yu & Efros (SIGGRAPH 2017), "Real-Time User-Guided Image
Colorization with Learned Deep Priors": the network in the ORIGINAL layout of
``colorizers/siggraph17.py`` (github richzhang/colorization), which the published
``siggraph17-df00044c.pth`` fits.

Input: L* in [0, 100] (B, 1, H, W); optional a*b* hints (B, 2, H, W) in Lab units and
their mask (B, 1, H, W), 1 where a hint is given; H and W multiples of 8. The L*, a*b*/110
and mask are concatenated (4 channels), go through a U-Net with three 2x subsamplings
(strided slicing, as the original does), dilated middle blocks and three up-convolutions
with shortcuts; ``model8``/``model9``/``model10`` start with a ReLU (index 0).
``model_out`` (1x1 conv + tanh) gives a*b*/110 at full resolution. ``model_class`` (the
classification head, 256 -> 529) is in the file but unused at inference, as in the original.
Output: a*b* (B, 2, H, W).
"""
from __future__ import annotations

import os

import torch
from torch import nn

from . import published
from .eccv16 import AB_NORM, L_CENT, L_NORM, conv_block

N_CLASSES = 529


class SIGGRAPH17(nn.Module):
    """The siggraph17 generator; state-dict keys equal the published file's."""

    def __init__(self) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*conv_block([4, 64, 64]))
        self.model2 = nn.Sequential(*conv_block([64, 128, 128]))
        self.model3 = nn.Sequential(*conv_block([128, 256, 256, 256]))
        self.model4 = nn.Sequential(*conv_block([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*conv_block([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*conv_block([512, 512, 512, 512]))
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1))
        self.model8 = nn.Sequential(nn.ReLU(True), *conv_block([256, 256, 256]))
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1))
        self.model9 = nn.Sequential(nn.ReLU(True), *conv_block([128, 128]))
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1),
                                     nn.LeakyReLU(0.2))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1))
        self.model_class = nn.Sequential(nn.Conv2d(256, N_CLASSES, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(self, input_A: torch.Tensor, input_B: torch.Tensor | None = None,
                mask_B: torch.Tensor | None = None) -> torch.Tensor:
        if input_B is None:
            input_B = torch.cat((input_A * 0, input_A * 0), dim=1)
        if mask_B is None:
            mask_B = input_A * 0
        x = torch.cat(((input_A - L_CENT) / L_NORM, input_B / AB_NORM, mask_B), dim=1)
        c1 = self.model1(x)
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c7 = self.model7(self.model6(self.model5(self.model4(c3[:, :, ::2, ::2]))))
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
        return self.model_out(c10) * AB_NORM


def build() -> SIGGRAPH17:
    """A randomly initialised siggraph17 network (load weights with `load_published`)."""
    return SIGGRAPH17()


def load_published(net: SIGGRAPH17, path: str | os.PathLike) -> SIGGRAPH17:
    """Load ``siggraph17-df00044c.pth`` (a bare state dict, with model_class) strictly."""
    return published.load_file(net, path, layout="state_dict")
