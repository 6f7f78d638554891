"""Baselines every leaderboard shows: they explain nothing about the model.

``random`` (per-sample seeded noise), ``center`` (a Gaussian centre prior: objects tend to sit
near the middle) and ``edge`` (image gradient magnitude: where the image has structure). A
method that does not beat them on a metric tells us about the metric or the data, not the model.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from bench.registry import METHODS
from bench.seeding import per_sample_rand
from methods.base import ExplainInput

_REF = "suite baseline (cf. Adebayo et al., NeurIPS 2018)"


@dataclasses.dataclass(frozen=True)
class RandomParams:
    """resolution: side of the noise grid (0: the input size); coarser grids give blobs that
    are upsampled by the post-processing."""

    resolution: int = 0

    def __post_init__(self) -> None:
        if self.resolution < 0:
            raise ValueError(f"resolution must be >= 0, got {self.resolution}")


@METHODS.register(
    summary="Uniform noise map, seeded per sample (chance level)", model_kind="any",
    temporal=False, needs_grad=False, needs_label=False, version="1", reference=_REF,
    params=RandomParams)
def random(inp: ExplainInput, params: RandomParams) -> torch.Tensor:
    """``[B, r, r]`` uniform [0, 1); row b depends only on (seed, sample_id[b])."""
    r = params.resolution or inp.x.shape[-1]
    return per_sample_rand(inp.seed, inp.sample_id, "method.random", (r, r), device=inp.x.device)


@dataclasses.dataclass(frozen=True)
class CenterParams:
    """sigma: standard deviation of the Gaussian as a fraction of the image side."""

    sigma: float = 0.25

    def __post_init__(self) -> None:
        if self.sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")


@METHODS.register(
    summary="Gaussian centre prior (same map for every image)", model_kind="any",
    temporal=False, needs_grad=False, needs_label=False, version="1", reference=_REF,
    params=CenterParams)
def center(inp: ExplainInput, params: CenterParams) -> torch.Tensor:
    """``[B, H, W]`` ``exp(-d^2 / (2 (sigma H)^2))`` with d the distance to the image centre."""
    B, _, H, W = inp.x.shape
    rows = torch.arange(H, device=inp.x.device, dtype=torch.float32) - (H - 1) / 2
    cols = torch.arange(W, device=inp.x.device, dtype=torch.float32) - (W - 1) / 2
    d2 = rows[:, None] ** 2 + cols[None, :] ** 2
    g = torch.exp(-d2 / (2 * (params.sigma * H) ** 2))
    return g.expand(B, H, W).clone()


@METHODS.register(
    summary="Image gradient magnitude (Sobel) of the input: structure, not the model",
    model_kind="any", temporal=False, needs_grad=False, needs_label=False, version="1",
    reference=_REF)
def edge(inp: ExplainInput, params: None) -> torch.Tensor:
    """``[B, H, W]`` Sobel magnitude ``sqrt(gx^2 + gy^2)`` summed over channels of the
    normalized input; replicate padding so the image border is not an edge."""
    x = inp.x.detach().float()
    B, C, H, W = x.shape
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    k = torch.stack([kx, kx.T]).unsqueeze(1)  # [2, 1, 3, 3]: d/dcol, d/drow
    g = F.conv2d(F.pad(x.reshape(B * C, 1, H, W), (1, 1, 1, 1), mode="replicate"), k)
    return g.pow(2).sum(1).sqrt().reshape(B, C, H, W).sum(1)
