"""Registered localization metrics: thin ``(ScoreInput, params) -> Scores`` wrappers around the
functional core in :mod:`metrics._localization` (which documents the per-sample, empty-mask and
constant-map policy). All are scalar, per sample, and scored per time step for temporal maps.

``region = "box"`` scores against the sample's bounding box, rasterized with
:func:`bench.data.base.box_to_mask` (x = column), instead of its mask.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from bench.registry import METRICS
from metrics import _localization as L
from metrics._maps import target_region
from metrics.base import ScoreInput, Scores

Region = Literal["mask", "box"]
_NEEDS = frozenset({"mask"})


@dataclasses.dataclass(frozen=True)
class RegionParams:
    """region: score against the object "mask" or its "box"."""

    region: Region = "mask"


@dataclasses.dataclass(frozen=True)
class PointingParams:
    """tolerance: px; None scales ``ref_tolerance`` px at ``ref_size`` px to the image height
    (TorchRay's 15 px at 224 px: 2 px at 32, 4 px at 64). region: "mask" or "box"."""

    tolerance: float | None = None
    ref_tolerance: float = 15.0
    ref_size: int = 224
    region: Region = "mask"

    def __post_init__(self) -> None:
        if self.tolerance is not None and self.tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")
        if self.ref_size <= 0 or self.ref_tolerance < 0:
            raise ValueError("ref_size must be > 0 and ref_tolerance >= 0")


@dataclasses.dataclass(frozen=True)
class TopkParams:
    """fraction: share of the image's pixels taken as the top-k set. region: "mask" or "box"."""

    fraction: float = 0.1
    region: Region = "mask"

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")


def _region(inp: ScoreInput, region: Region):
    return target_region(inp.maps, inp.batch.mask, inp.batch.box, region)


#: what every metric of this module registers with (each adds its summary, reference, params)
_REG = dict(category="localization", higher_is_better=True, needs=_NEEDS, output="scalar", per_timestep=True,
            scope="explanation", version="1")


@METRICS.register(summary="Pointing game: argmax of the map within a tolerance of the object",
                  **_REG, reference="Zhang et al. 2018, IJCV (excitation backprop); TorchRay",
                  params=PointingParams, headline=True)
def pointing_game(inp: ScoreInput, params: PointingParams) -> Scores:
    tol = params.tolerance
    if tol is None:
        tol = L.default_tolerance(inp.maps.shape[1], params.ref_tolerance, params.ref_size)
    return Scores(values=L.pointing_game(inp.maps, _region(inp, params.region), tol))


@METRICS.register(summary="Share of the map's mass inside the object (mask or box)",
                  **_REG, reference="Wang et al. 2020, Score-CAM (CVPR workshops)", params=RegionParams)
def energy_pointing_game(inp: ScoreInput, params: RegionParams) -> Scores:
    return Scores(values=L.energy_pointing_game(inp.maps, _region(inp, params.region)))


@METRICS.register(summary="Fraction of the top-|mask| pixels that lie in the mask",
                  **_REG, reference="Arras et al. 2022, CLEVR-XAI (Information Fusion)", params=RegionParams)
def relevance_rank_accuracy(inp: ScoreInput, params: RegionParams) -> Scores:
    return Scores(values=L.relevance_rank_accuracy(inp.maps, _region(inp, params.region)))


@METRICS.register(summary="ROC-AUC of the map as a detector of object pixels",
                  **_REG, reference="Fawcett 2006 (ROC analysis); scikit-learn roc_auc_score",
                  params=RegionParams)
def mask_auroc(inp: ScoreInput, params: RegionParams) -> Scores:
    return Scores(values=L.mask_auroc(inp.maps, _region(inp, params.region)))


@METRICS.register(summary="IoU of the top-k% pixels of the map with the object",
                  **_REG, reference="Theiner et al. 2022, WACV (top-k intersection)", params=TopkParams)
def topk_iou(inp: ScoreInput, params: TopkParams) -> Scores:
    return Scores(values=L.topk_iou(inp.maps, _region(inp, params.region), params.fraction))
