"""The callables a metric's input carries (:mod:`metrics.base`), resolved and memoized.

A metric asks for models by what they are (:class:`~metrics.base.ModelRef`) and for work by what
it is (re-explain ``x`` on a model, attack the batch on a model). :class:`Services` turns a
reference into a module and a *model key* that names its weights, and keeps the work in the
run's one :class:`~bench.pipeline.memo.Memo` under keys it builds itself, so no metric ever builds a key.

The runner builds one :class:`Services` per (batch view, time step) from the cell's models
(:mod:`bench.pipeline.cell`); :func:`direct_input` builds the same callables for a direct call
(tests, notebooks), keying models by the content of their weights.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import torch
from torch import nn

from bench.attacks.core import AttackSpec, attack
from bench.attacks.resolve import is_stochastic, norm_stats, transfer_source_name
from bench.config import config_hash
from bench.data.base import Batch
from bench.errors import BenchError
from bench.explain import Explanation
from bench.pipeline.memo import Memo, model_key
from bench.store import state_digest, tensor_digest
from metrics.base import METHOD_MODEL, ModelRef, ModelScoreInput, ScoreInput

#: A model and the key that names its weights and card.
Keyed = tuple[nn.Module, str]

#: Re-runs the method under evaluation on a model for input ``x`` of the view's samples:
#: ``(model, model key, x [B, C, H, W]) -> Explanation``.
Rerun = Callable[[nn.Module, str, torch.Tensor], Explanation]


@dataclasses.dataclass(frozen=True, eq=False)
class Services:
    """Resolves :class:`ModelRef` and memoizes re-explanations, derived models and attacks.

    memo: the run's memo. batch: the samples the metric scores. seed: the run seed.
    data_mean / data_std: the normalization (None: from the model's card).
    probed / method: the probed model and the model the method ran on (None: not available).
    named: any registered model by name, with its key (the runner's loader).
    rerun: the method re-run (None: no method, model scope). job: names (method, params, layer,
    seed, post-processing, targets) in keys. step: the time step whose maps ``explain`` returns.
    """

    memo: Memo
    batch: Batch
    seed: int
    data_mean: tuple[float, ...] | None
    data_std: tuple[float, ...] | None
    probed: Keyed | None
    method: Keyed | None = None
    named: Callable[[str], Keyed] | None = None
    rerun: Rerun | None = None
    job: str = ""
    step: int | None = None

    def model(self, ref: ModelRef) -> Keyed:
        """The module ``ref`` names and its key (a derived model built once per memo lifetime)."""
        base = self._base(ref)
        if ref.derive is None:
            return base
        model, key = base
        d = ref.derive
        dkey = f"{key}|{type(d).__name__}:{config_hash(d)}|seed={self.seed}"
        b = self.batch
        derived = self.memo.compute(("model", dkey), lambda: d.build(model, b.x, b.sample_id, self.seed))
        return derived, dkey

    def _base(self, ref: ModelRef) -> Keyed:
        if ref.role == "method":
            if self.method is None:
                raise BenchError("this metric asks for the method's model, which a model-scope metric has not")
            return self.method
        if self.probed is None:
            raise BenchError("no probed model to resolve the metric's model against")
        if ref.role == "probed":
            return self.probed
        name = transfer_source_name(self.probed[0], ref.name)
        if self.named is None:
            raise BenchError(f"model {name!r} cannot be loaded here")
        return self.named(name)

    def explanation(self, x: torch.Tensor, on: ModelRef = METHOD_MODEL) -> Explanation:
        """The method's whole explanation of input ``x`` on model ``on`` (memoized)."""
        if self.rerun is None:
            raise BenchError("this metric re-explains, but there is no method to re-run")
        model, key = self.model(on)
        b = self.batch
        rerun = self.rerun
        return self.memo.compute(("explanation", key, self.job, tensor_digest(x, b.sample_id)),
                                 lambda: rerun(model, key, x))

    def explain(self, x: torch.Tensor, on: ModelRef = METHOD_MODEL) -> torch.Tensor:
        """:class:`metrics.base.ExplainFn`: the maps ``[B, H, W]`` (the step's, when scoring one)."""
        e = self.explanation(x, on)
        if self.step is None:
            return e.maps
        if e.steps is None:
            raise BenchError("the method has no per-step maps to re-explain step by step")
        return e.steps[self.step]

    def attack(self, spec: AttackSpec, eps: float, on: ModelRef = METHOD_MODEL) -> torch.Tensor:
        """:class:`metrics.base.AttackFn`: the batch attacked on ``on`` (kept across batches and
        cells: every method's metrics on one model share the adversarial batch)."""
        model, key = self.model(on)
        b, seed = self.batch, self.seed
        mean, std = norm_stats(model, self.data_mean, self.data_std)
        if spec.eot > 1 and not is_stochastic(model, b.x, b.sample_id, seed):
            spec = dataclasses.replace(spec, eot=1)   # a deterministic encoding: EOT adds nothing
        k = ("attack", key, repr(spec), repr(float(eps)), str(seed), repr(mean), repr(std),
             tensor_digest(b.x, b.y, b.sample_id))
        return self.memo.keep(k, lambda: attack(model, b.x, b.y, b.sample_id, eps, spec, mean, std, seed))


def content_key(model: nn.Module) -> str:
    """A model's key from the content of its weights (and its card, where it carries one)."""
    card = getattr(model, "card", None)
    return model_key(state_digest(model), card) if card is not None else f"{state_digest(model)}:-"


def _maps_only(explain: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> Rerun:
    def rerun(model: nn.Module, key: str, x: torch.Tensor) -> Explanation:
        maps = explain(model, x).detach()
        return Explanation(maps=maps, steps=None, degenerate=torch.zeros(maps.shape[0], dtype=torch.bool),
                           steps_degenerate=None)
    return rerun


def direct_services(batch: Batch, *, model: nn.Module | None = None, method_model: nn.Module | None = None,
                    explain: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None, seed: int = 0,
                    data_mean: tuple[float, ...] | None = None, data_std: tuple[float, ...] | None = None,
                    named: Callable[[str], nn.Module] | None = None, memo: Memo | None = None) -> Services:
    """:class:`Services` outside a run: models keyed by their weights' content; ``explain(model, x)
    -> maps [B, H, W]`` re-runs the method; ``named`` loads another model by name (default: the
    zoo resolution, :func:`bench.attacks.resolve.load_source`)."""
    from bench.attacks.resolve import load_source

    method_model = method_model if method_model is not None else model
    # each named model loaded (and its weights hashed) once per services object
    load = functools.cache(named or (lambda name: load_source(name, batch.x.device, seed)))
    return Services(
        memo=memo if memo is not None else Memo(), batch=batch, seed=seed, data_mean=data_mean, data_std=data_std,
        probed=None if model is None else (model, content_key(model)),
        method=None if method_model is None else (method_model, content_key(method_model)),
        named=lambda name: (lambda m: (m, content_key(m)))(load(name)),
        rerun=None if explain is None else _maps_only(explain), job="direct")


def direct_input(maps: torch.Tensor, batch: Batch, *, model: nn.Module | None = None,
                 method_model: nn.Module | None = None,
                 explain: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None, seed: int = 0,
                 data_mean: tuple[float, ...] | None = None, data_std: tuple[float, ...] | None = None,
                 memo: Memo | None = None, **fields: object) -> ScoreInput:
    """A :class:`~metrics.base.ScoreInput` for a direct call: ``model`` is the probed model
    (``model(x, sample_id=..., seed=...)``), ``method_model`` the model the method ran on (default:
    ``model``), ``explain(model, x) -> maps`` re-runs the method. ``fields``: degenerate,
    timestep, steps."""
    sv = direct_services(batch, model=model, method_model=method_model, explain=explain, seed=seed,
                         data_mean=data_mean, data_std=data_std, memo=memo)
    return ScoreInput(
        maps=maps, batch=batch, seed=seed, data_mean=data_mean, data_std=data_std,
        model_fn=None if model is None else (lambda x, sid: model(x, sample_id=sid, seed=seed)),
        explain=None if explain is None else sv.explain,
        attack=sv.attack if (model is not None or method_model is not None) else None,
        **fields)  # type: ignore[arg-type]


def direct_model_input(batch: Batch, model: nn.Module, *, seed: int = 0,
                       data_mean: tuple[float, ...] | None = None, data_std: tuple[float, ...] | None = None,
                       named: Callable[[str], nn.Module] | None = None, memo: Memo | None = None) -> ModelScoreInput:
    """A :class:`~metrics.base.ModelScoreInput` for a direct call (``named``: how a transfer
    source is loaded; default the zoo resolution)."""
    sv = direct_services(batch, model=model, seed=seed, data_mean=data_mean, data_std=data_std,
                         named=named, memo=memo)
    return ModelScoreInput(batch=batch, model=model, seed=seed, data_mean=data_mean, data_std=data_std,
                           attack=sv.attack)
