"""How much an explanation changes between a clean and an attacked input (Ghorbani et al. 2019).

Pure functions of two batches of post-processed maps ``a, b`` ``[B, H, W]`` (values in [0, 1])
returning ``[B]`` float scores. A score that is undefined for a sample (a constant map has no
ranking; an all-zero map has no center of mass) is NaN, never a silent number.
Spearman and SSIM are shared with the sanity checks: :mod:`metrics._ssim`.
"""

from __future__ import annotations

import math

import torch

from metrics._maps import descending_rank


def topk_intersection(a: torch.Tensor, b: torch.Tensor, frac: float) -> torch.Tensor:
    """``[B]`` share of the top ``frac`` pixels of ``a`` that are also top pixels of ``b``.

    k = max(1, round(frac * H * W)); ties broken by pixel index (stable sort). Chance level
    for independent maps is k / (H * W).
    """
    k = max(1, round(frac * a[0].numel()))
    both = (descending_rank(a.detach()) < k) & (descending_rank(b.detach()) < k)
    return (both.sum(1).double() / k).float()


def center_of_mass(m: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` -> ``[B, 2]`` (row, col) centers of mass in pixels; NaN for an all-zero map."""
    h, w = m.shape[-2:]
    m = m.detach().double()
    mass = m.sum((-2, -1))
    rows = (m.sum(-1) * torch.arange(h, dtype=torch.float64, device=m.device)).sum(-1) / mass
    cols = (m.sum(-2) * torch.arange(w, dtype=torch.float64, device=m.device)).sum(-1) / mass
    com = torch.stack([rows, cols], -1)
    return torch.where((mass > 0)[:, None], com, torch.full_like(com, math.nan))


def com_shift(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[B]`` Euclidean distance of the centers of mass, as a fraction of the image diagonal."""
    h, w = a.shape[-2:]
    return ((center_of_mass(a) - center_of_mass(b)).norm(dim=-1) / max(math.hypot(h - 1, w - 1), 1.0)).float()
