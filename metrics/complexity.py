"""Cheap complexity scores of a map, per sample: sparseness (Gini index) and entropy.

Both read the map as a distribution of mass over pixels (maps are post-processed, non-negative).
An all-zero map has no distribution: both give NaN (excluded and counted), stated here.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from bench.errors import BenchError
from bench.registry import METRICS
from metrics._maps import check_maps, flat
from metrics.base import ScoreInput, Scores


def _mass(maps: torch.Tensor) -> torch.Tensor:
    check_maps(maps)
    if (maps < 0).any():
        raise BenchError("complexity scores need non-negative maps")
    return flat(maps).double()


def gini(maps: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` -> ``[B]`` Gini index of the pixel values (Hurley & Rickard 2009):
    ``sum_i (2i - n - 1) x_(i) / (n sum x)`` with x sorted ascending, i = 1..n.
    0 for a uniform map, ``(n - 1) / n`` for a single non-zero pixel; NaN for an all-zero map."""
    x = torch.sort(_mass(maps), dim=1).values
    n = x.shape[1]
    i = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    total = x.sum(dim=1)
    g = ((2 * i - n - 1) * x).sum(dim=1) / (n * total.clamp_min(1e-300))
    return torch.where(total > 0, g, torch.full_like(g, math.nan)).float()


def map_entropy(maps: torch.Tensor, normalized: bool = True) -> torch.Tensor:
    """``[B, H, W]`` -> ``[B]`` Shannon entropy (nats) of ``p = map / sum(map)``, ``0 log 0 = 0``;
    divided by ``log(H * W)`` when ``normalized`` (uniform map -> 1, one pixel -> 0).
    NaN for an all-zero map."""
    x = _mass(maps)
    total = x.sum(dim=1, keepdim=True)
    p = x / total.clamp_min(1e-300)
    h = -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(dim=1)
    if normalized and x.shape[1] > 1:
        h = h / math.log(x.shape[1])
    return torch.where(total.squeeze(1) > 0, h, torch.full_like(h, math.nan)).float()


@dataclasses.dataclass(frozen=True)
class EntropyParams:
    """normalized: divide by log(H * W) so maps of any size score in [0, 1]."""

    normalized: bool = True


#: what every metric of this module registers with (each adds its direction, summary, reference)
_REG = dict(category="complexity", needs=frozenset(), output="scalar", per_timestep=True, scope="explanation",
            version="1")


@METRICS.register(summary="Sparseness: Gini index of the map (higher = more concentrated)",
                  higher_is_better=True, **_REG, reference="Chalasani et al. 2020, Concise explanations (ICML)")
def sparseness(inp: ScoreInput, params: None) -> Scores:
    return Scores(values=gini(inp.maps))


@METRICS.register(summary="Entropy of the map's mass distribution (lower = simpler)",
                  higher_is_better=False, **_REG, params=EntropyParams,
                  reference="Bhatt et al. 2020, Evaluating and aggregating feature-based explanations (IJCAI)")
def entropy(inp: ScoreInput, params: EntropyParams) -> Scores:
    return Scores(values=map_entropy(inp.maps, params.normalized))
