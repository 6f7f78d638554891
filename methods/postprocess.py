"""The one post-processing step shared by every method (design principle 3).

Methods return raw maps ``[..., h, w]``. This module turns them into what metrics see:
rectify (ReLU / abs / none), bilinear upsampling to the input size, per-map min-max
normalization into [0, 1]. A map that is all zero, constant or non-finite after rectification
is *degenerate* (e.g. a silent spiking layer): it post-processes to all zeros and is flagged,
never divided by zero into NaNs. The config is part of the run's config hash.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from bench.errors import BenchError

TimeReduce = Literal["mean", "sum", "last", "max"]


@dataclasses.dataclass(frozen=True)
class PostprocessConfig:
    """How raw maps become ``[0, 1]`` maps at input size.

    relu: "relu" keeps positive evidence (the Grad-CAM convention), "abs" keeps magnitude
        (signed attributions such as integrated gradients), "none" keeps the sign (then the
        min-max step maps the most negative value to 0).
    upsample: bilinear (align_corners=False) resize to the input size; False requires raw
        maps already at input size.
    eps: a map whose value range is ``<= eps * max|map|`` counts as constant (degenerate).
    """

    relu: Literal["relu", "abs", "none"] = "relu"
    upsample: bool = True
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if not 0.0 <= self.eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {self.eps}")


def rectify(raw: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply the ReLU policy elementwise; shape unchanged."""
    if policy == "relu":
        return raw.clamp_min(0)
    if policy == "abs":
        return raw.abs()
    if policy == "none":
        return raw
    raise ValueError(f"unknown relu policy {policy!r}")


def reduce_time(maps: torch.Tensor, how: str) -> torch.Tensor:
    """``[T, B, h, w]`` raw per-step maps -> ``[B, h, w]`` single-map view."""
    if how == "mean":
        return maps.mean(0)
    if how == "sum":
        return maps.sum(0)
    if how == "last":
        return maps[-1]
    if how == "max":
        return maps.amax(0)
    raise ValueError(f"unknown time reduction {how!r}")


def degenerate(raw: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``[..., h, w]`` -> ``[...]`` bool: True for an all-zero, constant or non-finite map."""
    flat = raw.detach().flatten(-2).double()
    finite = torch.isfinite(flat).all(-1)
    safe = torch.where(torch.isfinite(flat), flat, torch.zeros_like(flat))
    span = safe.amax(-1) - safe.amin(-1)
    scale = safe.abs().amax(-1)
    return ~finite | (span <= eps * scale) | (scale == 0)


def postprocess(raw: torch.Tensor, size: int, cfg: PostprocessConfig = PostprocessConfig()) -> torch.Tensor:
    """``[..., h, w]`` raw maps -> ``[..., size, size]`` float maps in [0, 1].

    Order: rectify, upsample, min-max per map (normalizing after upsampling makes every
    non-degenerate map reach exactly 0 and 1). Degenerate maps become all zeros.
    """
    lead, (h, w) = raw.shape[:-2], raw.shape[-2:]
    m = rectify(raw.detach().float(), cfg.relu).reshape(-1, 1, h, w)
    bad = degenerate(m[:, 0], cfg.eps)
    m = torch.where(bad[:, None, None, None], torch.zeros_like(m), m)
    if (h, w) != (size, size):
        if not cfg.upsample:
            raise BenchError(f"raw map is {h}x{w} but upsampling is off (input {size}x{size})")
        m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
    lo = m.amin((-2, -1), keepdim=True)
    hi = m.amax((-2, -1), keepdim=True)
    out = (m - lo) / (hi - lo).clamp_min(torch.finfo(m.dtype).tiny)
    out = torch.where(bad[:, None, None, None], torch.zeros_like(out), out.clamp(0, 1))
    return out.reshape(*lead, size, size)


def is_degenerate_after_policy(raw: torch.Tensor, cfg: PostprocessConfig) -> torch.Tensor:
    """``[..., h, w]`` -> ``[...]``: the degenerate flag of the map that :func:`postprocess` sees."""
    return degenerate(rectify(raw.detach(), cfg.relu), cfg.eps)
