"""Private helpers shared by the metric modules: shape checks, pixel ranking, target regions.

Every function works per sample on ``[B, H, W]`` maps; nothing here looks across the batch.
"""

from __future__ import annotations

from typing import Literal

import torch

from bench.data.base import box_to_mask
from bench.errors import BenchError
from bench.seeding import per_sample_rand

TieBreak = Literal["stable", "random"]


def flat(t: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` (or any ``[B, ...]``) -> ``[B, N]``."""
    return t.reshape(t.shape[0], -1)


def check_maps(maps: torch.Tensor, masks: torch.Tensor | None = None) -> None:
    """Raise :class:`BenchError` unless ``maps`` is a finite ``[B, H, W]`` tensor (and ``masks``
    has the same shape)."""
    if maps.dim() != 3:
        raise BenchError(f"metrics expect maps of shape [B, H, W], got {tuple(maps.shape)}")
    if not torch.isfinite(maps).all():
        raise BenchError("maps contain NaN or infinite values")
    if masks is not None and masks.shape != maps.shape:
        raise BenchError(f"masks {tuple(masks.shape)} do not match maps {tuple(maps.shape)}")


def is_constant(maps: torch.Tensor) -> torch.Tensor:
    """``[B]`` bool: the map has one value everywhere (includes an all-zero map)."""
    f = flat(maps)
    return f.amax(dim=1) == f.amin(dim=1)


def descending_rank(maps: torch.Tensor, tie_break: TieBreak = "stable", *, seed: int = 0,
                    sample_id: torch.Tensor | None = None, stage: str = "ties") -> torch.Tensor:
    """``[B, N]`` long: each pixel's position in descending saliency order (0 = most salient).

    Ties: "stable" keeps row-major order (the first pixel first); "random" breaks them with a
    permutation drawn per sample from ``(seed, sample_id, stage)``, so it never depends on the batch.
    """
    f = flat(maps)
    b, n = f.shape
    if tie_break == "stable":
        order = torch.sort(f, dim=1, descending=True, stable=True).indices
    elif tie_break == "random":
        ids = sample_id if sample_id is not None else torch.arange(b)
        perm = per_sample_rand(seed, ids.cpu(), stage, (n,)).argsort(dim=1).to(f.device)
        shuffled = f.gather(1, perm)
        order = perm.gather(1, torch.sort(shuffled, dim=1, descending=True, stable=True).indices)
    else:
        raise BenchError(f"unknown tie_break {tie_break!r} (expected 'stable' or 'random')")
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=f.device).expand(b, n))
    return rank


def target_region(maps: torch.Tensor, mask: torch.Tensor | None, box: torch.Tensor | None,
                  region: Literal["mask", "box"]) -> torch.Tensor:
    """``[B, H, W]`` bool region to localize: the batch's mask, or its box rasterized with
    :func:`bench.data.base.box_to_mask` (x = column, y = row)."""
    _, h, w = maps.shape
    if region == "mask":
        if mask is None:
            raise BenchError("this metric needs object masks, but the batch has none")
        out = mask.bool()
    elif region == "box":
        if box is None:
            raise BenchError("region='box' needs bounding boxes, but the batch has none")
        out = box_to_mask(box.reshape(-1, 4), h, w)
    else:
        raise BenchError(f"unknown region {region!r} (expected 'mask' or 'box')")
    check_maps(maps, out)
    return out.to(maps.device)
