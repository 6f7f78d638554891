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
or "model" (scored once per model, independent of any method; input :class:`ModelScoreInput`,
which has no maps; rows have an empty method).

A metric receives only what it uses. Expensive work goes through the callables of its input,
which the runner resolves and caches (outside a run, :mod:`bench.pipeline.services` builds
the same callables for direct calls):

* ``inp.model_fn(x, sample_id)``: the probed model's logits;
* ``inp.explain(x, on=...)``: the method under evaluation re-run on input ``x`` of the batch's
  samples, on the model ``on`` names (:class:`ModelRef`: the method's own model by default, a
  variant derived from it such as a randomized copy, or another registered model);
* ``inp.attack(spec, eps, on=...)``: the batch attacked (L-inf, ground-truth labels) on ``on``.

Models are asked for by *what* they are (:data:`METHOD_MODEL`, :data:`PROBED`,
:func:`named_model`, :func:`variant`), never by a cache key: the runner names the work.
Results leave a metric only through its return value (:class:`Scores`): an attack-based metric
returns the attacked inputs it compared in ``Scores.attacked``, and the report's
clean-vs-attacked gallery reads them there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal, Protocol

import torch
from torch import nn

from bench.attacks.core import AttackSpec
from bench.data.base import Batch
from bench.errors import BenchError

#: The probed model as a function: ``(x [B, C, H, W] normalized, sample_id [B]) -> logits [B, K]``.
#: For an SNN the encoding is keyed by sample_id, so repeated ids see the same Poisson spikes.
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Derivation(Protocol):
    """A model derived from another (a randomized copy, ...): a frozen dataclass whose fields
    name the derivation completely (the runner keys the derived model by them and the seed)."""

    def build(self, model: nn.Module, x: torch.Tensor, sample_id: torch.Tensor, seed: int) -> nn.Module:
        """A new module derived from ``model`` (never ``model`` changed in place); ``x [B, C, H, W]``
        and ``sample_id [B]`` are the batch, for derivations that need a forward pass.
        Raises :class:`NoSuchVariant` when the derivation does not exist for ``model``."""


class NoSuchVariant(BenchError):
    """The requested derivation does not exist for this model (e.g. randomization stage 7 of a
    model with 5 weight layers)."""


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A model a metric asks for, by what it is; the runner resolves it and caches the work.

    role: "method" (the model the method under evaluation ran on), "probed" (the model the
        metric scores), or "named" (a registered model by ``name``; "" = the probed model's twin).
    derive: a :class:`Derivation` of that model, or None for the model itself.
    """

    role: Literal["method", "probed", "named"] = "method"
    name: str = ""
    derive: Derivation | None = None


METHOD_MODEL = ModelRef("method")
PROBED = ModelRef("probed")


def named_model(name: str = "") -> ModelRef:
    """A registered model by name ("" = the probed model's twin: for an ANN, the SNN whose twin it is)."""
    return ModelRef("named", name)


def variant(derive: Derivation, of: ModelRef = METHOD_MODEL) -> ModelRef:
    """Model ``of`` derived by ``derive`` (e.g. a randomized copy of the method's model)."""
    return dataclasses.replace(of, derive=derive)


class ExplainFn(Protocol):
    """``explain(x [B, C, H, W], on) -> post-processed maps [B, H, W]`` of the method under
    evaluation (same params, layer, target classes) for input ``x`` of the batch's samples on
    model ``on``; the step's maps when the metric scores one time step."""

    def __call__(self, x: torch.Tensor, on: ModelRef = METHOD_MODEL) -> torch.Tensor: ...


class AttackFn(Protocol):
    """``attack(spec, eps, on) -> [B, C, H, W]``: the batch's inputs attacked within L-inf ``eps``
    (pixel units) against the ground-truth labels on model ``on``, normalized like ``batch.x``.
    EOT over ``spec.eot`` encodings applies to models with a stochastic encoding only."""

    def __call__(self, spec: AttackSpec, eps: float, on: ModelRef = METHOD_MODEL) -> torch.Tensor: ...


@dataclasses.dataclass(frozen=True)
class ScoreInput:
    """What an explanation-scope metric sees.

    maps: ``[B, H, W]`` post-processed maps in [0, 1].
    batch: the samples (normalized x, labels, ids, masks/boxes).
    degenerate: ``[B]`` bool, True where the raw map was all-zero/constant.
    seed: the run seed.
    data_mean / data_std: the dataset's per-channel normalization statistics
        (``x = (pixel - mean) / std``), for metrics whose substrate is defined in pixel space
        (e.g. the gray fill of the ``m4`` deletion preset), or None when unknown.
    timestep: the time step whose maps ``maps`` are (per-time-step scoring), or None for the
        time-aggregated map.
    steps: the method's per-step maps ``[T, B, H, W]`` (post-processed), or None for a method
        without them (metrics over the whole sequence, e.g. the tracking lag, read them here).
    model_fn: the probed model (:data:`ModelFn`), when the metric ``needs`` "model".
    explain: :class:`ExplainFn`, when the metric ``needs`` "explainer".
    attack: :class:`AttackFn`, when the metric ``needs`` "model" and "explainer".
    """

    maps: torch.Tensor
    batch: Batch
    degenerate: torch.Tensor | None = None
    seed: int = 0
    data_mean: tuple[float, ...] | None = None
    data_std: tuple[float, ...] | None = None
    timestep: int | None = None
    steps: torch.Tensor | None = None
    model_fn: ModelFn | None = None
    explain: ExplainFn | None = None
    attack: AttackFn | None = None


@dataclasses.dataclass(frozen=True)
class ModelScoreInput:
    """What a model-scope metric sees: the probed model and a batch (no maps, no method).

    model: ``model(x [B, C, H, W], sample_id=..., seed=...) -> logits [B, K]`` (a module: the
        audit takes input gradients under several encoding seeds).
    batch, seed, data_mean / data_std: as in :class:`ScoreInput`.
    attack: :class:`AttackFn` (``on`` = :data:`PROBED`, or :func:`named_model` for a transfer source).
    """

    batch: Batch
    model: nn.Module
    seed: int = 0
    data_mean: tuple[float, ...] | None = None
    data_std: tuple[float, ...] | None = None
    attack: AttackFn | None = None


def require(fn: object, what: str, metric: str) -> None:
    """A one-line error when a metric is called without a callable it uses."""
    if fn is None:
        raise BenchError(f"{metric} needs {what} (ScoreInput.{what}); see bench.pipeline.services")


@dataclasses.dataclass(frozen=True)
class AttackedInputs:
    """The perturbed inputs an attack-based metric compared, per curve point.

    points: the E attack budgets. inputs: E tensors ``[B, C, H, W]``, normalized like ``batch.x``.
    """

    points: tuple[float, ...]
    inputs: tuple[torch.Tensor, ...]


@dataclasses.dataclass(frozen=True)
class Scores:
    """What a metric returns: one type for every metric.

    values: ``[B]`` float, the per-sample score (NaN = undefined for that sample, e.g. an
        empty mask; excluded from aggregates and counted).
    curve: ``[B, P]`` for curve metrics (deletion fraction, epsilon, randomization stage), else None.
    points: the P x positions of the curve, else None.
    attacked: the attacked inputs the scores compared (attack-based metrics), else None; the
        report's clean-vs-attacked gallery shows them.
    """

    values: torch.Tensor
    curve: torch.Tensor | None = None
    points: tuple[float, ...] | None = None
    attacked: AttackedInputs | None = None
