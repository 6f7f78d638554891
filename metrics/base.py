"""The contract every metric follows.

A metric is a plain function registered in :data:`bench.registry.METRICS`::

    @METRICS.register(summary=..., category="localization", higher_is_better=True,
                      needs=frozenset({"mask"}), output="scalar", per_timestep=True,
                      version="1", reference="Zhang et al. 2018", params=PointingParams)
    def pointing_game(inp: ScoreInput, params: PointingParams) -> Scores: ...

Metrics only ever see post-processed maps in [0, 1] (``[B, H, W]``); per-time-step scores are
obtained by the runner calling a ``per_timestep=True`` metric once per step's maps.

``category``: localization / faithfulness / robustness / sanity / complexity (or a new one).
``needs``: subset of {"mask", "box", "model", "explainer", "step_mask"}; the runner skips a
metric whose needs cannot be met (with a logged reason). ``step_mask`` (a mask per time step,
time-varying datasets): the runner also scores a per-time-step metric once per data step on the
maps of a method without per-step maps (its one map broadcast over time), so static methods get
the same per-step rows as temporal ones; ``ScoreInput.timestep`` says which step. ``output``: "scalar" or "curve".
``scope``: "explanation" (default; scored for every method's maps, input :class:`ScoreInput`)
or "model" (scored once per model, independent of any method, e.g. accuracy under attack; input
:class:`ModelScoreInput`, which has no maps; rows have an empty method).

Work several metrics share goes through ``inp.memo`` (:class:`bench.memo.Memo`) under explicit
keys: :func:`explain_again` for re-explanations, :func:`attacked_inputs_key` for the inputs an
``attacked`` metric compared. Without a memo (direct calls, tests) everything is computed.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

from bench.data.base import Batch
from bench.errors import BenchError
from bench.memo import Key, Memo, params_key
from bench.store import tensor_digest

#: The probed model as a function: ``(x [B, C, H, W] normalized, sample_id [B]) -> logits [B, K]``.
#: For an SNN the encoding is keyed by sample_id, so repeated ids see the same Poisson spikes.
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Re-run the method under evaluation (same params, layer, target policy) on ``model``
#: (e.g. a randomized copy) for input ``x`` of the batch's samples:
#: ``(model, x [B, C, H, W]) -> post-processed maps [B, H, W]``.
ExplainFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class ScoreInput:
    """What an explanation-scope metric sees.

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
    memo: the run's memo of shared work (:mod:`bench.memo`), or None (compute everything).
    explain_key: names ``explain_fn``'s job in memo keys (method, params, layer, seed,
        post-processing, targets, time step); "" = do not memoize re-explanations.
    method_model_key: names ``method_model``'s weights and card (:func:`bench.memo.model_key`);
        "" = do not memoize.
    timestep: the time step whose maps ``maps`` are (per-time-step scoring), or None for the
        time-aggregated map.
    steps: the method's per-step maps ``[T, B, H, W]`` (post-processed), or None for a method
        without them (metrics over the whole sequence, e.g. the tracking lag, read them here).
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
    memo: Memo | None = None
    explain_key: str = ""
    method_model_key: str = ""
    timestep: int | None = None
    steps: torch.Tensor | None = None


@dataclasses.dataclass(frozen=True)
class ModelScoreInput:
    """What a model-scope metric sees: the probed model and a batch (no maps, no method).

    model: ``model(x [B, C, H, W], sample_id=..., seed=...) -> logits [B, K]``.
    batch, seed, data_mean / data_std, load_model, memo: as in :class:`ScoreInput`.
    """

    batch: Batch
    model: nn.Module
    seed: int = 0
    data_mean: tuple[float, ...] | None = None
    data_std: tuple[float, ...] | None = None
    load_model: Callable[[str], nn.Module] | None = None
    memo: Memo | None = None


@dataclasses.dataclass(frozen=True)
class AttackedInputs:
    """The perturbed inputs an ``attacked`` metric compared, per curve point.

    points: the E attack budgets. inputs: E tensors ``[B, C, H, W]``, normalized like ``batch.x``.
    The runner's clean-vs-attacked gallery shows these (see :func:`attacked_inputs_key`).
    """

    points: tuple[float, ...]
    inputs: tuple[torch.Tensor, ...]


def explain_again(inp: ScoreInput, model: nn.Module, model_key: str, x: torch.Tensor) -> torch.Tensor:
    """``inp.explain_fn(model, x)``: the method's maps ``[B, H, W]`` for input ``x`` ``[B, C, H, W]``
    of the batch's samples on ``model``, memoized under (``inp.explain_key``, ``model_key``,
    digest of ``x`` and the sample ids) when the run gave a memo and both keys.

    ``model_key`` must name ``model``'s weights: a model a metric derives (a randomized copy)
    needs its own key, never the key of the model it was derived from."""
    fn = inp.explain_fn
    if fn is None:
        raise BenchError("this metric needs the method's explain_fn")
    if inp.memo is None or not inp.explain_key or not model_key:
        return fn(model, x).detach()
    key = ("maps", inp.explain_key, model_key, tensor_digest(x, inp.batch.sample_id))
    return inp.memo.compute(key, lambda: fn(model, x).detach())


def attacked_inputs_key(inp: ScoreInput, params: object) -> Key | None:
    """Where an ``attacked`` metric records the :class:`AttackedInputs` it compared for ``inp``
    with ``params`` (the runner's gallery reads them there); None without memo or model key."""
    if inp.memo is None or not inp.method_model_key:
        return None
    b = inp.batch
    return ("attacked_inputs", inp.method_model_key, params_key(params), str(inp.seed),
            repr(inp.data_mean), repr(inp.data_std), tensor_digest(b.x, b.y, b.sample_id))


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
