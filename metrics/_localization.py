"""Localization scores, functional core: pure functions on ``[B, H, W]`` tensors returning ``[B]``.

The registered metrics (same names, ``(ScoreInput, params) -> Scores``) live in
:mod:`metrics.localization`; this module registers nothing, so the public functions keep
their plain names (``metrics._localization.pointing_game(maps, masks, tol)``).

Shared policy, avoiding the traps of Quantus 0.6.0's localization metrics (Hedstroem et al.,
"Quantus", JMLR 24(34), 2023), tested in ``tests/test_quantus_traps.py``:
- every score is computed per sample; nothing is normalized across the batch;
- an empty mask gives NaN (undefined; the aggregator excludes and counts it), never a hit;
- a constant map (max == min, which includes the all-zero map of a silent SNN layer) carries no
  localization: the hit/overlap scores (pointing game, relevance rank accuracy, top-k IoU) give
  it 0, the energy score gives an all-zero map 0 (no mass inside) and a constant non-zero map its
  formula value (the mask's area fraction, i.e. chance), and the ROC-AUC gives it 0.5 (all ties).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.errors import BenchError
from metrics._maps import check_maps, descending_rank, flat, is_constant

NAN = float("nan")


def default_tolerance(height: int, ref_tolerance: float = 15.0, ref_size: int = 224) -> int:
    """The pointing-game tolerance scaled from ``ref_tolerance`` px at ``ref_size`` px
    (TorchRay: 15 px at 224) to an image of ``height`` px, rounded: 32 px -> 2, 64 px -> 4."""
    return int(round(ref_tolerance * height / ref_size))


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: float) -> torch.Tensor:
    """``[B]`` 1.0 hit / 0.0 miss / NaN for an empty mask.

    The point is the map's argmax at image resolution, the first index in row-major order on
    ties. Hit: some mask pixel lies within ``tolerance`` px (Euclidean, inclusive) of it.
    A constant map is a miss.
    """
    check_maps(maps, masks)
    if tolerance < 0:
        raise BenchError(f"pointing game tolerance must be >= 0, got {tolerance}")
    b, h, w = maps.shape
    f = flat(maps)
    idx = torch.arange(h * w, device=maps.device).expand(b, -1)
    # Explicit first-index argmax: the smallest flat index that attains the maximum.
    first = torch.where(f == f.amax(dim=1, keepdim=True), idx, h * w).amin(dim=1)
    r, c = (first // w).view(b, 1, 1), (first % w).view(b, 1, 1)
    rows = torch.arange(h, device=maps.device).view(1, h, 1)
    cols = torch.arange(w, device=maps.device).view(1, 1, w)
    near = (rows - r) ** 2 + (cols - c) ** 2 <= tolerance ** 2
    hit = (near & masks.bool()).flatten(1).any(dim=1) & ~is_constant(maps)
    return _nan_where_empty(hit.float(), masks)


def energy_pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``[B]`` share of the map's mass inside the mask: ``sum(map * mask) / sum(map)``.

    Maps must be non-negative. An all-zero map scores 0; an empty mask gives NaN.
    """
    check_maps(maps, masks)
    if (maps < 0).any():
        raise BenchError("energy_pointing_game needs non-negative maps")
    f, m = flat(maps).double(), flat(masks).double()
    mass = f.sum(dim=1)
    inside = (f * m).sum(dim=1)
    out = torch.where(mass > 0, inside / mass.clamp_min(1e-300), torch.zeros_like(mass))
    return _nan_where_empty(out.float(), masks)


def relevance_rank_accuracy(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``[B]`` fraction of the ``K = |mask|`` highest-ranked pixels that lie in the mask
    (Arras et al. 2022). Ties in rank order: row-major (stable). Constant map -> 0."""
    check_maps(maps, masks)
    m = flat(masks).bool()
    k = m.sum(dim=1, keepdim=True)
    top = descending_rank(maps) < k
    out = (top & m).sum(dim=1).float() / k.squeeze(1).clamp_min(1).float()
    out = torch.where(is_constant(maps), torch.zeros_like(out), out)
    return _nan_where_empty(out, masks)


def topk_iou(maps: torch.Tensor, masks: torch.Tensor, fraction: float) -> torch.Tensor:
    """``[B]`` IoU between the top ``round(fraction * H * W)`` pixels (at least 1) and the mask.
    Constant map -> 0."""
    check_maps(maps, masks)
    if not 0.0 < fraction <= 1.0:
        raise BenchError(f"topk_iou fraction must be in (0, 1], got {fraction}")
    m = flat(masks).bool()
    k = max(1, int(round(fraction * m.shape[1])))
    top = descending_rank(maps) < k
    out = (top & m).sum(dim=1).float() / (top | m).sum(dim=1).float()
    out = torch.where(is_constant(maps), torch.zeros_like(out), out)
    return _nan_where_empty(out, masks)


def mask_auroc(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``[B]`` ROC-AUC of the map as a score for mask pixels (scikit-learn ``roc_auc_score``).
    NaN where the mask is empty or covers the whole image (AUC undefined with one class)."""
    check_maps(maps, masks)
    f = flat(maps).detach().cpu().double().numpy()
    m = flat(masks).bool().cpu().numpy()
    out = []
    for scores, labels in zip(f, m):
        n_pos = int(labels.sum())
        out.append(NAN if n_pos in (0, labels.size) else float(roc_auc_score(labels, scores)))
    return torch.tensor(out, dtype=torch.float32, device=maps.device)


def class_balanced_mean(values: torch.Tensor | np.ndarray, classes: torch.Tensor | np.ndarray
                        ) -> tuple[float, dict[int, float]]:
    """TorchRay's aggregation: mean per class, then the mean over classes.

    values: ``[N]`` per-sample scores (NaN excluded); classes: ``[N]`` class ids.
    Returns ``(mean over classes, {class: class mean})``; a class with only NaN is left out.
    """
    v = np.asarray(values, dtype=float).reshape(-1)
    c = np.asarray(classes).reshape(-1)
    if v.shape != c.shape:
        raise BenchError(f"values {v.shape} and classes {c.shape} differ in length")
    per_class = {}
    for k in np.unique(c):
        sel = v[(c == k) & ~np.isnan(v)]
        if sel.size:
            per_class[int(k)] = float(sel.mean())
    overall = float(np.mean(list(per_class.values()))) if per_class else math.nan
    return overall, per_class


def _nan_where_empty(values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Empty masks make every localization score undefined (NaN), never a hit."""
    empty = ~flat(masks).bool().any(dim=1)
    return torch.where(empty, torch.full_like(values, NAN), values)
