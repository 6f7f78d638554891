"""Structural similarity (Wang et al. 2004, IEEE TIP) and Spearman rank correlation, per sample.

SSIM follows the reference ``ssim_index.m``: an 11 x 11 Gaussian window (sigma 1.5), constants
``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` with data range ``L``, local statistics by 'valid'
filtering (no padding), and the mean of the SSIM map. On images smaller than the window the
window shrinks to the largest odd size that fits (sigma unchanged).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata

from bench.errors import BenchError


def gaussian_window(size: int, sigma: float, dtype=torch.float64) -> torch.Tensor:
    """``[size, size]`` Gaussian window summing to 1."""
    t = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    w = torch.outer(g, g)
    return w / w.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, *, window: int = 11, sigma: float = 1.5,
         data_range: float = 1.0, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Mean SSIM of each pair: ``a``, ``b`` ``[B, H, W]`` -> ``[B]`` (float64 internally)."""
    if a.shape != b.shape or a.dim() != 3:
        raise BenchError(f"ssim expects two [B, H, W] tensors of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    size = min(window, a.shape[1], a.shape[2])
    size -= 1 - size % 2  # largest odd size that fits
    w = gaussian_window(size, sigma).to(a.device).view(1, 1, size, size)
    x, y = a.double().unsqueeze(1), b.double().unsqueeze(1)

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w)

    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx ** 2
    vy = filt(y * y) - my ** 2
    cxy = filt(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return smap.flatten(1).mean(dim=1)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair (average ranks for ties): ``[B, ...]`` -> ``[B]``.

    NaN where either side is constant (the correlation is undefined there).
    """
    if a.shape != b.shape:
        raise BenchError(f"spearman expects tensors of one shape, got {tuple(a.shape)}, {tuple(b.shape)}")
    ra = rankdata(a.detach().reshape(a.shape[0], -1).cpu().double().numpy(), axis=1)
    rb = rankdata(b.detach().reshape(b.shape[0], -1).cpu().double().numpy(), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, (ra * rb).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)
    return torch.as_tensor(rho, dtype=torch.float32)
