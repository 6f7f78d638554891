"""Deletion and insertion curves (Petsiuk et al., RISE, BMVC 2018), functional core.

Pure functions; the registered ``deletion`` / ``insertion`` metrics, their parameters and the
named presets live in :mod:`metrics.faithfulness`.

A curve of ``n_steps + 1`` points at x = i / n_steps. At point i the ``k_i = round(i * H * W /
n_steps)`` most salient pixels (all channels of a pixel together) are switched: deletion replaces
them with the substrate (point 0 is the image, the last point the all-substrate image);
insertion starts from the substrate and puts the image's pixels back (the last point is the
image). The y value is the model's softmax probability (or logit) of one class per sample: the
class predicted on the clean image unless ``target`` is given.

Cost: every (sample, point) pair is one row of a stacked batch, evaluated in chunks of
``max_batch`` rows, so the work is the forward passes themselves. Each row carries its sample's
id, so an SNN sees the same Poisson encoding at every point of a curve.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from bench.errors import BenchError
from metrics._maps import TieBreak, check_maps, descending_rank
from metrics.base import ModelFn

Substrate = Literal["zero", "blur", "mean", "gray"]
ScoreKind = Literal["prob", "logit"]
AucRule = Literal["trapezoid", "mean"]


def gaussian_blur(x: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """``[B, C, H, W]`` -> same shape, separable Gaussian blur per channel.

    Reflect padding (replicate when the image is smaller than the kernel). RISE's code pads with
    zeros, which darkens the borders of small images; this is a deliberate deviation.
    """
    if kernel_size < 1 or kernel_size % 2 == 0 or sigma <= 0:
        raise BenchError(f"blur needs an odd kernel_size >= 1 and sigma > 0, got {kernel_size}, {sigma}")
    c = x.shape[1]
    t = torch.arange(kernel_size, dtype=x.dtype, device=x.device) - kernel_size // 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    pad = kernel_size // 2
    mode = "reflect" if pad < min(x.shape[-2:]) else "replicate"
    y = F.pad(x, (pad, pad, pad, pad), mode=mode)
    y = F.conv2d(y, g.view(1, 1, 1, -1).expand(c, 1, 1, kernel_size), groups=c)
    return F.conv2d(y, g.view(1, 1, -1, 1).expand(c, 1, kernel_size, 1), groups=c)


def make_substrate(x: torch.Tensor, kind: Substrate, *, blur_kernel: int = 11, blur_sigma: float = 5.0,
                   gray: torch.Tensor | None = None) -> torch.Tensor:
    """The image everything is replaced by, ``[B, C, H, W]`` in the model's normalized space.

    zero: 0 (the dataset mean colour; RISE's deletion). blur: :func:`gaussian_blur`. mean: the
    image's own per-channel mean. gray: ``gray`` ``[C]``, a pixel-space gray already normalized.
    """
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "blur":
        return gaussian_blur(x, blur_kernel, blur_sigma)
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    if kind == "gray":
        if gray is None:
            raise BenchError("substrate 'gray' needs the gray value in normalized units")
        return gray.to(x).view(1, -1, 1, 1).expand_as(x)
    raise BenchError(f"unknown substrate {kind!r} (expected zero, blur, mean or gray)")


def step_counts(n_pixels: int, n_steps: int) -> torch.Tensor:
    """``[n_steps + 1]`` long: pixels switched at point i, ``round(i * n_pixels / n_steps)``."""
    if n_steps < 1:
        raise BenchError(f"n_steps must be >= 1, got {n_steps}")
    return torch.round(torch.arange(n_steps + 1, dtype=torch.float64) * n_pixels / n_steps).long()


def auc(curves: torch.Tensor, rule: AucRule = "trapezoid") -> torch.Tensor:
    """``[B, P]`` curves on x = linspace(0, 1, P) -> ``[B]`` areas.

    trapezoid (RISE): ``(sum(c) - c[0]/2 - c[-1]/2) / (P - 1)``. mean (InterpretDL/M4): ``mean(c)``.
    """
    if curves.dim() != 2 or curves.shape[1] < 2:
        raise BenchError(f"auc expects curves [B, P] with P >= 2, got {tuple(curves.shape)}")
    if rule == "mean":
        return curves.mean(dim=1)
    if rule == "trapezoid":
        return (curves.sum(dim=1) - curves[:, 0] / 2 - curves[:, -1] / 2) / (curves.shape[1] - 1)
    raise BenchError(f"unknown auc rule {rule!r} (expected 'trapezoid' or 'mean')")


def deletion_curve(model_fn: ModelFn, x: torch.Tensor, maps: torch.Tensor, *,
                   sample_id: torch.Tensor | None = None, target: torch.Tensor | None = None,
                   substrate: Substrate = "blur", blur_kernel: int = 11, blur_sigma: float = 5.0,
                   gray: torch.Tensor | None = None, n_steps: int = 32, score: ScoreKind = "prob",
                   tie_break: TieBreak = "stable", seed: int = 0, max_batch: int = 256) -> torch.Tensor:
    """``[B, n_steps + 1]`` deletion curve (lower area = more faithful).

    x: ``[B, C, H, W]`` normalized; maps: ``[B, H, W]``; sample_id: ``[B]`` (default 0..B-1);
    target: ``[B]`` class, default the class predicted on the clean image (point 0).
    """
    sub = make_substrate(x, substrate, blur_kernel=blur_kernel, blur_sigma=blur_sigma, gray=gray)
    return _curve(model_fn, sub, x, maps, sample_id, target, n_steps, score, tie_break, seed,
                  max_batch, clean_point=0)


def insertion_curve(model_fn: ModelFn, x: torch.Tensor, maps: torch.Tensor, *,
                    sample_id: torch.Tensor | None = None, target: torch.Tensor | None = None,
                    substrate: Substrate = "blur", blur_kernel: int = 11, blur_sigma: float = 5.0,
                    gray: torch.Tensor | None = None, n_steps: int = 32, score: ScoreKind = "prob",
                    tie_break: TieBreak = "stable", seed: int = 0, max_batch: int = 256) -> torch.Tensor:
    """``[B, n_steps + 1]`` insertion curve (higher area = more faithful); arguments as
    :func:`deletion_curve`, the default target is the class predicted on the image (last point)."""
    sub = make_substrate(x, substrate, blur_kernel=blur_kernel, blur_sigma=blur_sigma, gray=gray)
    return _curve(model_fn, x, sub, maps, sample_id, target, n_steps, score, tie_break, seed,
                  max_batch, clean_point=-1)


def _curve(model_fn: ModelFn, switched: torch.Tensor, kept: torch.Tensor, maps: torch.Tensor,
           sample_id: torch.Tensor | None, target: torch.Tensor | None, n_steps: int,
           score: ScoreKind, tie_break: TieBreak, seed: int, max_batch: int,
           clean_point: int) -> torch.Tensor:
    """Point i shows ``switched`` on the k_i most salient pixels and ``kept`` elsewhere."""
    b, _, h, w = kept.shape
    check_maps(maps)
    if maps.shape != (b, h, w):
        raise BenchError(f"maps {tuple(maps.shape)} do not match images {tuple(kept.shape)}")
    if max_batch < 1:
        raise BenchError(f"max_batch must be >= 1, got {max_batch}")
    dev = kept.device
    ids = (sample_id if sample_id is not None else torch.arange(b)).to(dev)
    rank = descending_rank(maps.to(dev), tie_break, seed=seed, sample_id=ids,
                           stage="faithfulness_ties").view(b, 1, h, w)
    ks = step_counts(h * w, n_steps).to(dev)
    p = ks.numel()
    logits = []
    with torch.no_grad():
        for start in range(0, b * p, max_batch):
            rows = torch.arange(start, min(start + max_batch, b * p), device=dev)
            bi, pi = rows // p, rows % p
            on = rank[bi] < ks[pi].view(-1, 1, 1, 1)
            logits.append(model_fn(torch.where(on, switched[bi], kept[bi]), ids[bi]).float())
    out = torch.cat(logits).view(b, p, -1)
    if score == "prob":
        out_scores = out.softmax(dim=-1)
    elif score == "logit":
        out_scores = out
    else:
        raise BenchError(f"unknown score {score!r} (expected 'prob' or 'logit')")
    cls = target.to(dev) if target is not None else out[:, clean_point].argmax(dim=-1)
    return out_scores.gather(2, cls.view(b, 1, 1).expand(b, p, 1)).squeeze(2)
