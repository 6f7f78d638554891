"""The contract every metric follows.

A metric is a plain function registered in :data:`bench.registry.METRICS`::

    @METRICS.register(summary=..., category="localization", higher_is_better=True,
                      needs=frozenset({"mask"}), output="scalar", per_timestep=True,
                      version="1", reference="Zhang et al. 2018", params=PointingParams)
    def pointing_game(inp: ScoreInput, params: PointingParams) -> Scores: ...

Metrics only ever see post-processed maps in [0, 1] (``[B, H, W]``); per-time-step scores are
obtained by the runner calling a ``per_timestep=True`` metric once per step's maps.

``category``: localization / faithfulness / robustness / sanity / complexity.
``needs``: subset of {"mask", "box", "model", "explainer"}; the runner skips a metric whose
needs cannot be met (with a logged reason). ``output``: "scalar" or "curve".
``scope``: "explanation" (default; scored for every method's maps) or "model" (scored once per
model, independent of any method, e.g. accuracy under attack; rows have an empty method).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

from bench.data.base import Batch

#: The probed model as a function: ``(x [B, C, H, W] normalized, sample_id [B]) -> logits [B, K]``.
#: For an SNN the encoding is keyed by sample_id, so repeated ids see the same Poisson spikes.
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Re-run the method under evaluation (same params, layer, target policy) on ``model``
#: (e.g. a randomized copy) for input ``x`` of the batch's samples:
#: ``(model, x [B, C, H, W]) -> post-processed maps [B, H, W]``.
ExplainFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class ScoreInput:
    """What a metric sees.

    maps: ``[B, H, W]`` post-processed maps in [0, 1].
    batch: the samples (normalized x, labels, ids, masks/boxes).
    model_fn: the probed model, or None when the metric does not need it.
    model: the probed model as a module (``model(x, sample_id=..., seed=...) -> logits``), for
        metrics that need more than forward calls (attacks with EOT over encoding seeds), or None.
    method_model: the model the method ran on (for sanity checks), or None.
    explain_fn: see :data:`ExplainFn`, or None.
    degenerate: ``[B]`` bool, True where the raw map was all-zero/constant.
    seed: the run seed.
    data_mean / data_std: the dataset's per-channel normalization statistics
        (``x = (pixel - mean) / std``), for metrics whose substrate is defined in pixel space
        (e.g. the gray fill of the ``m4`` deletion preset), or None when unknown.
    load_model: another registered model by name, resolved like the probed model (the run's
        dataset, checkpoint cache and model seed), for metrics that need one (the transfer
        attack's source); None outside a run (the metric then uses the default resolution).
    """

    maps: torch.Tensor
    batch: Batch
    model_fn: ModelFn | None = None
    model: nn.Module | None = None
    method_model: nn.Module | None = None
    explain_fn: ExplainFn | None = None
    degenerate: torch.Tensor | None = None
    seed: int = 0
    data_mean: tuple[float, ...] | None = None
    data_std: tuple[float, ...] | None = None
    load_model: Callable[[str], nn.Module] | None = None


@dataclasses.dataclass(frozen=True)
class Scores:
    """What a metric returns: one type for every metric.

    values: ``[B]`` float, the per-sample score (NaN = undefined for that sample, e.g. an
        empty mask; excluded from aggregates and counted).
    curve: ``[B, P]`` for curve metrics (deletion fraction, epsilon, randomization stage), else None.
    points: the P x positions of the curve, else None.
    """

    values: torch.Tensor
    curve: torch.Tensor | None = None
    points: tuple[float, ...] | None = None
