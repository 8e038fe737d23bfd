"""DDColor (Kang et al., ICCV 2023), "Towards Photo-Realistic Image Colorization via Dual
Decoders": the network as its authors publish it (github piddnad/DDColor, ``ddcolor/model.py``
and ``basicsr/archs/ddcolor_arch_utils/``), written with plain convolutions.

* Encoder: ConvNeXt-L (DDColor-L) or ConvNeXt-T (DDColor-T); the four stage outputs after
  extra channels-first LayerNorms (``norm0``..``norm3``) are the features. ConvNeXt's final
  pooled LayerNorm (``encoder.arch.norm``) is in the file but its output is unused.
* Pixel decoder: three U-Net blocks (pixel-shuffle x2 upsampling with blur, BatchNorm'd
  skip features, 3x3 conv) from 1/32 to 1/4 resolution, then a x4 pixel shuffle to full
  resolution (256 channels).
* Colour decoder: 100 learnable colour queries refined by 9 transformer layers (cross
  attention to the 1/16, 1/8, 1/4 features in turn, self attention, FFN); the queries'
  embeddings dotted with the full-resolution features give 100 maps.
* Refinement: a 1x1 conv on those 100 maps + the normalised input image (103 -> 2).

The authors' convolutions use ``torch.nn.utils.spectral_norm``; here they are plain and
`load_published` folds each ``weight_orig``/``weight_u``/``weight_v`` into a weight.

Input: an RGB image in [0, 1] (B, 3, H, W), gray-as-RGB in the authors' pipeline, H and W
multiples of 32 (512 x 512 as published); ImageNet normalisation is done inside.
Output: a*b* in Lab units (B, 2, H, W).
"""
from __future__ import annotations

import math
import os

import torch
from torch import nn
from torch.nn import functional as F

from . import published

ENCODERS = {"tiny": ([3, 3, 9, 3], [96, 192, 384, 768]),
            "large": ([3, 3, 27, 3], [192, 384, 768, 1536])}
NUM_QUERIES, NUM_SCALES, DEC_LAYERS, HIDDEN = 100, 3, 9, 256
NF = 512


# ----------------------------------------------------------------------------- encoder
class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, H, W) (ConvNeXt's ``channels_first``)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 conv, LayerNorm, MLP (x4) with GELU, layer scale, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """ConvNeXt (Liu et al. 2022) returning the four normalised stage outputs."""

    def __init__(self, depths: list[int], dims: list[int]) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), ChannelsFirstLayerNorm(dims[0]))]
            + [nn.Sequential(ChannelsFirstLayerNorm(dims[i]),
                             nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)) for i in range(3)])
        self.stages = nn.ModuleList(
            nn.Sequential(*[ConvNeXtBlock(dims[i]) for _ in range(depths[i])]) for i in range(4))
        for i in range(4):
            self.add_module(f"norm{i}", ChannelsFirstLayerNorm(dims[i]))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)  # published, unused by DDColor

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            feats.append(getattr(self, f"norm{i}")(x))
        return feats


class ImageEncoder(nn.Module):
    def __init__(self, size: str) -> None:
        super().__init__()
        self.arch = ConvNeXt(*ENCODERS[size])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.arch(x)


# ----------------------------------------------------------------------------- pixel decoder
class PixelShuffleUp(nn.Module):
    """1x1 conv (+ BatchNorm), ReLU, pixel shuffle by `scale`, 2x2 blur (replicate-padded)."""

    def __init__(self, cin: int, cout: int, scale: int, batchnorm: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, cout * scale * scale, 1, bias=not batchnorm)]
        if batchnorm:
            layers.append(nn.BatchNorm2d(cout * scale * scale))
        self.conv = nn.Sequential(*layers)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pixel_shuffle(F.relu(self.conv(x)), self.scale)
        return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class UnetBlockWide(nn.Module):
    """Upsample x2, concatenate the BatchNorm'd skip feature, ReLU, 3x3 conv, ReLU, BN."""

    def __init__(self, up_in: int, skip_in: int, out: int) -> None:
        super().__init__()
        self.shuf = PixelShuffleUp(up_in, out, 2, batchnorm=True)
        self.bn = nn.BatchNorm2d(skip_in)
        self.conv = nn.Sequential(nn.Conv2d(out + skip_in, out, 3, padding=1, bias=False),
                                  nn.ReLU(True), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(F.relu(torch.cat([self.shuf(x), self.bn(skip)], dim=1)))


# ----------------------------------------------------------------------------- colour decoder
def sine_position(feature: torch.Tensor, num_feats: int = HIDDEN // 2,
                  temperature: float = 10000.0) -> torch.Tensor:
    """DETR's normalised 2-D sine position embedding of a (B, C, H, W) map -> (B, 2F, H, W)."""
    b, _, h, w = feature.shape
    dev = feature.device
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, h + 1, dtype=torch.float32, device=dev)[:, None].expand(h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=dev)[None, :].expand(h, w)
    y = y / (h + eps) * scale
    x = x / (w + eps) * scale
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=dev)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    px, py = x[..., None] / dim_t, y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=3).flatten(2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=3).flatten(2)
    return torch.cat((py, px), dim=2).permute(2, 0, 1)[None].expand(b, -1, -1, -1)


class SelfAttentionLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = x + pos
        return self.norm(x + self.self_attn(q, q, value=x, need_weights=False)[0])


class CrossAttentionLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(d, heads)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor,
                query_pos: torch.Tensor) -> torch.Tensor:
        out = self.multihead_attn(x + query_pos, memory + pos, value=memory,
                                  need_weights=False)[0]
        return self.norm(x + out)


class FFNLayer(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d, hidden)
        self.linear2 = nn.Linear(hidden, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class MLP(nn.Module):
    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MultiScaleColorDecoder(nn.Module):
    """Colour queries refined against multi-scale features (post-norm transformer)."""

    def __init__(self, in_channels: list[int], hidden: int = HIDDEN,
                 num_queries: int = NUM_QUERIES, heads: int = 8, ffn: int = 2048,
                 layers: int = DEC_LAYERS) -> None:
        super().__init__()
        self.query_feat = nn.Embedding(num_queries, hidden)
        self.query_embed = nn.Embedding(num_queries, hidden)
        self.level_embed = nn.Embedding(len(in_channels), hidden)
        self.input_proj = nn.ModuleList(nn.Conv2d(c, hidden, 1) for c in in_channels)
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer(hidden, heads) for _ in range(layers))
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer(hidden, heads) for _ in range(layers))
        self.transformer_ffn_layers = nn.ModuleList(FFNLayer(hidden, ffn) for _ in range(layers))
        self.decoder_norm = nn.LayerNorm(hidden)
        self.color_embed = MLP([hidden, hidden, hidden, hidden])

    def forward(self, scales: list[torch.Tensor], img_features: torch.Tensor) -> torch.Tensor:
        src, pos = [], []
        for i, f in enumerate(scales):  # (B, C, H, W) -> (HW, B, C)
            pos.append(sine_position(f).flatten(2).permute(2, 0, 1))
            src.append((self.input_proj[i](f).flatten(2)
                        + self.level_embed.weight[i][None, :, None]).permute(2, 0, 1))
        b = img_features.shape[0]
        query_pos = self.query_embed.weight[:, None].expand(-1, b, -1)
        x = self.query_feat.weight[:, None].expand(-1, b, -1)
        for i in range(len(self.transformer_ffn_layers)):
            lvl = i % len(scales)
            x = self.transformer_cross_attention_layers[i](x, src[lvl], pos[lvl], query_pos)
            x = self.transformer_self_attention_layers[i](x, query_pos)
            x = self.transformer_ffn_layers[i](x)
        emb = self.color_embed(self.decoder_norm(x).transpose(0, 1))  # (B, Q, C)
        return torch.einsum("bqc,bchw->bqhw", emb, img_features)


class DuelDecoder(nn.Module):
    """Pixel decoder (U-Net blocks) + colour decoder ("Duel" is the authors' spelling)."""

    def __init__(self, enc_dims: list[int]) -> None:
        super().__init__()
        c0, c1, c2, c3 = enc_dims
        self.layers = nn.Sequential(UnetBlockWide(c3, c2, NF), UnetBlockWide(NF, c1, NF),
                                    UnetBlockWide(NF, c0, NF // 2))
        self.last_shuf = PixelShuffleUp(NF // 2, NF // 2, 4, batchnorm=False)
        self.color_decoder = MultiScaleColorDecoder([NF, NF, NF // 2])

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        out0 = self.layers[0](feats[3], feats[2])
        out1 = self.layers[1](out0, feats[1])
        out2 = self.layers[2](out1, feats[0])
        return self.color_decoder([out0, out1, out2], self.last_shuf(out2))


class DDColor(nn.Module):
    """DDColor-L or -T; state-dict keys equal the published file's after spectral-norm folding."""

    def __init__(self, size: str = "large") -> None:
        super().__init__()
        if size not in ENCODERS:
            raise ValueError(f"DDColor size must be 'tiny' or 'large', not {size!r}")
        self.size = size
        self.encoder = ImageEncoder(size)
        self.decoder = DuelDecoder(ENCODERS[size][1])
        self.refine_net = nn.Sequential(nn.Sequential(nn.Conv2d(NUM_QUERIES + 3, 2, 1)))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            x = (x - self.mean) / self.std
        maps = self.decoder(self.encoder(x))
        return self.refine_net(torch.cat([maps, x], dim=1))


#: The convolutions the authors wrap in ``torch.nn.utils.spectral_norm`` (module names).
SPECTRAL_NORM_CONVS = tuple(
    [f"decoder.layers.{i}.{part}.0" for i in range(3) for part in ("shuf.conv", "conv")]
    + ["decoder.last_shuf.conv.0", "refine_net.0.0"])


def with_spectral_norm(net: DDColor) -> DDColor:
    """A copy of `net` parametrised as the authors' (``spectral_norm`` on the same convs):
    its state dict has the published keys. For tests and for writing files in that layout."""
    import copy

    twin = copy.deepcopy(net)
    for name in SPECTRAL_NORM_CONVS:
        parent, _, child = name.rpartition(".")
        holder = twin.get_submodule(parent)
        setattr(holder, child, nn.utils.spectral_norm(getattr(holder, child)))
    return twin


def build(size: str = "large") -> DDColor:
    """A randomly initialised DDColor-L ("large") or DDColor-T ("tiny")."""
    return DDColor(size)


def load_published(net: DDColor, path: str | os.PathLike) -> DDColor:
    """Load a published DDColor file: ``{'params': state_dict}`` (the .pth files) or the bare
    state dict (the per-model Hugging Face repos' pytorch_model.bin), spectral norm folded,
    strictly."""
    return published.load_file(net, path, layout="auto", spectral_norm=True)
