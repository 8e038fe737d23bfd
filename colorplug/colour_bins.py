"""Colour as classification (Zhang, Isola & Efros 2016): quantised a*b*, soft targets,
class rebalancing and annealed-mean decoding.

Regressing a*b* with MSE or L1 averages the plausible colours of a pixel into a brownish
gray (the sepia users see). Predicting a distribution over a*b* bins keeps the modes; the
annealed mean (temperature T) then picks between the mean (T=1, cautious) and the mode
(T->0, colourful). The bins are the cells of a 10x10 a*b* grid that hold some sRGB colour;
they are computed here, deterministically, and stored with each model's weights.
"""
from __future__ import annotations

from typing import Any

import numpy as np

GRID_STEP = 10.0
GRID_LIMIT = 110.0  # cell centres -110..110
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5
PRIOR_SIGMA = 5.0
DEFAULT_TEMPERATURE = 0.38  # the paper's choice


def in_gamut_bins(step: float = GRID_STEP, limit: float = GRID_LIMIT,
                  probes: int = 5, levels: int = 201) -> np.ndarray:
    """Centres (Q, 2) of the a*b* grid cells that hold an sRGB colour at some L*.

    A cell is kept when any of `probes` x `probes` points inside it is in gamut at any of
    `levels` lightness values in [0, 100].
    """
    from .color import lab_to_linear

    centres = np.arange(-limit, limit + step / 2, step)
    aa, bb = np.meshgrid(centres, centres, indexing="ij")
    offsets = (np.arange(probes) + 0.5) / probes * step - step / 2
    oa, ob = np.meshgrid(offsets, offsets, indexing="ij")
    pa = aa[..., None, None] + oa  # (G, G, p, p)
    pb = bb[..., None, None] + ob
    keep = np.zeros(aa.shape, dtype=bool)
    for lightness in np.linspace(0, 100, levels):
        lab = np.stack([np.full(pa.shape, lightness), pa, pb], -1)
        lin = lab_to_linear(lab, clamp_z=False)
        ok = ((lin >= -1e-6) & (lin <= 1 + 1e-6)).all(-1)
        keep |= ok.any((-1, -2))
    return np.stack([aa[keep], bb[keep]], -1).astype(np.float32)


def soft_encode(ab: Any, centres: Any, neighbours: int = SOFT_NEIGHBOURS,
                sigma: float = SOFT_SIGMA) -> Any:
    """a*b* (N, 2, H, W) -> soft targets (N, Q, H, W): a Gaussian over the nearest bins."""
    import torch

    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, centres) ** 2  # (P, Q)
    near_d2, near_idx = d2.topk(neighbours, dim=1, largest=False)
    weight = torch.softmax(-near_d2 / (2 * sigma ** 2), dim=1)
    target = torch.zeros_like(d2).scatter_(1, near_idx, weight)
    return target.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def nearest_bin(ab: Any, centres: Any) -> Any:
    """Index (N, H, W) of the bin nearest each a*b* value of (N, 2, H, W)."""
    import torch

    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    return torch.cdist(flat, centres).argmin(1).reshape(n, h, w)


def rebalancing_weights(counts: np.ndarray, centres: np.ndarray,
                        lam: float = REBALANCE_LAMBDA, sigma: float = PRIOR_SIGMA) -> np.ndarray:
    """Per-bin loss weights w ∝ ((1-λ) p̃ + λ/Q)^-1, normalised so E_p̃[w] = 1.

    p̃ is the empirical bin distribution (`counts`) smoothed by a Gaussian of `sigma` over
    the bin centres; rare (saturated) colours weigh more, so the model stops preferring gray.
    """
    p = counts.astype(np.float64) / max(counts.sum(), 1)
    d2 = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * sigma ** 2))
    smoothed = kernel @ p
    smoothed /= smoothed.sum()
    w = 1.0 / ((1 - lam) * smoothed + lam / len(centres))
    w /= (smoothed * w).sum()
    return w.astype(np.float32)


_LUT_CACHE: dict[tuple, tuple[Any, Any]] = {}


def soft_encode_sparse(ab: Any, centres: Any, neighbours: int = SOFT_NEIGHBOURS,
                       sigma: float = SOFT_SIGMA) -> tuple[Any, Any]:
    """`soft_encode` as (bin indices, weights), each (N, neighbours, H, W), nearest first.

    Looked up in a table over integer a*b* in [-128, 128] (built once per bin set), so a
    training step costs a gather instead of a distance to every bin per pixel; rounding to
    whole a*b* units moves weights by < 0.5 units against sigma 5.
    """
    import torch

    key = (tuple(centres.flatten().tolist()), neighbours, sigma, str(centres.device))
    if key not in _LUT_CACHE:
        grid = torch.arange(-128, 129, dtype=torch.float32, device=centres.device)
        aa, bb = torch.meshgrid(grid, grid, indexing="ij")
        flat = torch.stack([aa.flatten(), bb.flatten()], 1)
        d2 = torch.cdist(flat, centres.float()) ** 2
        near_d2, near_idx = d2.topk(neighbours, dim=1, largest=False)
        _LUT_CACHE[key] = (near_idx, torch.softmax(-near_d2 / (2 * sigma ** 2), dim=1))
    lut_idx, lut_w = _LUT_CACHE[key]
    cell = ab.round().clamp(-128, 128).long() + 128  # (N, 2, H, W)
    flat_index = cell[:, 0] * 257 + cell[:, 1]       # (N, H, W)
    return lut_idx[flat_index].permute(0, 3, 1, 2), lut_w[flat_index].permute(0, 3, 1, 2)


def rebalanced_cross_entropy(logits: Any, ab: Any, centres: Any, weights: Any) -> Any:
    """Multinomial cross-entropy of `logits` (N, Q, H, W) against the soft encoding of `ab`
    (N, 2, H, W), each pixel weighted by the rebalancing weight of its nearest bin."""
    import torch

    idx, soft = soft_encode_sparse(ab, centres)
    logp = torch.log_softmax(logits, dim=1).gather(1, idx)
    per_pixel = -(soft * logp).sum(1)  # (N, H, W)
    return (weights[idx[:, 0]] * per_pixel).mean()


def annealed_mean(logits: Any, centres: Any, temperature: float = DEFAULT_TEMPERATURE) -> Any:
    """a*b* (N, 2, H, W) from bin logits: the mean of the distribution sharpened by T.

    softmax(log p / T) = softmax(logits / T); T=1 is the mean, T->0 the mode.
    """
    import torch

    if temperature <= 1e-3:
        idx = logits.argmax(1)
        return centres[idx].permute(0, 3, 1, 2)
    probs = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", probs, centres)


def normalised_entropy(logits: Any) -> Any:
    """Entropy of the bin distribution (N, H, W) divided by log Q: 0 sure, 1 clueless."""
    import math

    import torch

    logp = torch.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(1) / math.log(logits.shape[1])


def check_decoding_options(temperature: Any, saturation: Any, bins: bool,
                           steering: Any = None) -> None:
    """The `temperature`, `saturation` and `steering` options: numbers in [0, 10];
    temperature and steering are refused (clearly) for weights that regress a*b*."""
    from .errors import InputError

    for name, value in (("temperature", temperature), ("saturation", saturation),
                        ("steering", steering)):
        if value is not None and (isinstance(value, bool) or
                                  not isinstance(value, (int, float)) or not 0 <= value <= 10):
            raise InputError(f"{name} must be a number in [0, 10]; got {value!r}")
    for name, value in (("temperature", temperature), ("steering", steering)):
        if not bins and value is not None:
            raise InputError(f"{name} applies to weights trained with --colour-loss bins; "
                             "these weights regress a*b* directly (saturation works with both)")


def confidence(logits: Any) -> Any:
    """Per-pixel confidence (N, H, W) in [0, 1]: 1 - the normalised entropy of the bins."""
    return 1 - normalised_entropy(logits.float())


def steered_gain(logits: Any, saturation: float, steering: float) -> Any:
    """Per-pixel chroma gain (N, H, W): `saturation` moved towards confident pixels.

    gain = saturation * c**steering / mean(c**steering) over each image, c = `confidence`:
    the image's mean gain stays `saturation` while sure pixels get more of it and unsure
    ones less (steering 0: the same gain everywhere).
    """
    weight = confidence(logits).clamp(min=1e-6) ** steering
    return saturation * weight / weight.mean(dim=(1, 2), keepdim=True)


def decode(logits: Any, centres: Any, temperature: float, saturation: float,
           steering: float = 0.0) -> Any:
    """Bin logits (N, Q, H, W) -> a*b* (N, 2, H, W): annealed mean times `saturation`,
    per pixel by confidence when `steering` > 0 (`steered_gain`)."""
    ab = annealed_mean(logits.float(), centres, temperature)
    if not steering:
        return ab * saturation
    return ab * steered_gain(logits, saturation, steering)[:, None]


def prior_from_photos(images: list, centres: Any, side: int = 64) -> Any:
    """Rebalancing weights (torch, (Q,)) from the a*b* histogram of training photos (PIL
    images, each reduced to `side` pixels for the count)."""
    import torch

    from .color import rgb_to_lab

    counts = np.zeros(len(centres))
    for img in images:
        small = img.convert("RGB").copy()
        small.thumbnail((side, side))
        lab = torch.from_numpy(rgb_to_lab(np.asarray(small, dtype=np.float32) / 255))
        idx = nearest_bin(lab.permute(2, 0, 1)[None, 1:].float(), centres)
        counts += np.bincount(idx.flatten().numpy(), minlength=len(centres))
    return torch.from_numpy(rebalancing_weights(counts, np.asarray(centres)))
