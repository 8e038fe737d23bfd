"""From two sets of similarity features to the colour net's input.

For each of the five levels, nearest-neighbour fields T->R and R->T over 3x3 patches
(`colorplug.nnf`): exact search at levels 1-4 (strides 4-32), and at level 0 (stride 2)
the level-1 fields upsampled and refined in a 3x3 window (coarse to fine, the cost of
9 candidates per pixel instead of a search over the whole reference). Per level two
similarity maps: T->R (the matched patches' cosine) and bidirectional (the cosine between
the target's feature at p and at R->T(T->R(p)): high where the match is mutual). The
reference's a*b* are warped by the level-0 field T->R.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...nnf import nearest_neighbor_field, refine_field, upsample_field, warp


@dataclass
class Correspondence:
    t_to_r: torch.Tensor          # [B, h0, w0, 2] level-0 field, (y, x) in the reference
    r_to_t: torch.Tensor          # [B, h0r, w0r, 2] level-0 field, (y, x) in the target
    similarities: torch.Tensor    # [B, 10, h0, w0]: (T->R, bidirectional) per level


def _bidirectional(feat_t: torch.Tensor, t_to_r: torch.Tensor, r_to_t: torch.Tensor) -> torch.Tensor:
    """cos(F_T(p), F_T(R->T(T->R(p)))) per target position: 1 where the match is mutual."""
    cycle = warp(r_to_t.permute(0, 3, 1, 2).float(), t_to_r).round().long().permute(0, 2, 3, 1)
    unit = F.normalize(feat_t, dim=1, eps=1e-8)
    return (unit * warp(unit, cycle)).sum(1)


def correspond(feats_t: list[torch.Tensor], feats_r: list[torch.Tensor], *,
               method: str = "auto") -> Correspondence:
    levels = len(feats_t)
    size0 = feats_t[0].shape[-2:]
    sims: list[torch.Tensor] = []
    fields = {}
    for k in range(levels - 1, -1, -1):
        ft, fr = feats_t[k].float(), feats_r[k].float()
        if k == 0 and levels > 1:
            up_tr = upsample_field(fields["tr"], *ft.shape[-2:], feats_r[1].shape[-2:], fr.shape[-2:])
            up_rt = upsample_field(fields["rt"], *fr.shape[-2:], feats_t[1].shape[-2:], ft.shape[-2:])
            tr, sim_tr = refine_field(ft, fr, up_tr, radius=1)
            rt, _ = refine_field(fr, ft, up_rt, radius=1)
        else:
            tr, sim_tr = nearest_neighbor_field(ft, fr, method=method)
            rt, _ = nearest_neighbor_field(fr, ft, method=method)
        fields = {"tr": tr, "rt": rt}
        bi = _bidirectional(ft, tr, rt)
        pair = torch.stack([sim_tr, bi], 1)
        if pair.shape[-2:] != size0:
            pair = F.interpolate(pair, size=size0, mode="bilinear", align_corners=False)
        sims.append(pair)
    sims.reverse()  # level 0 first
    return Correspondence(fields["tr"], fields["rt"], torch.cat(sims, 1))


def warp_ab(ab_r: torch.Tensor, field: torch.Tensor, ref_size: tuple[int, int]) -> torch.Tensor:
    """Reference a*b* [B, 2, H, W] (any size), reduced to the reference's level-0 grid
    `ref_size`, gathered by a field [B, h, w, 2] into the target's grid [B, 2, h, w]."""
    if tuple(ab_r.shape[-2:]) != tuple(ref_size):
        ab_r = F.interpolate(ab_r, size=tuple(ref_size), mode="area")
    return warp(ab_r, field)
