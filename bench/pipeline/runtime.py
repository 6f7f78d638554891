"""The run's shared resources: stage timers, progress bars and the model loader.

One of each per invocation, created by :func:`bench.pipeline.run.run_suite` and handed to every cell
(:class:`bench.pipeline.cell.CellContext`); none of them knows about the runner.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn
from tqdm.auto import tqdm

from bench.errors import BenchError
from bench.pipeline.memo import model_key
from bench.store import write_atomic
from bench.store.rundir import dump_json

if TYPE_CHECKING:
    from bench.models.card import ModelCard
    from bench.pipeline.plan import Plan


class Clock:
    """Wall seconds per pipeline stage ("data", "models", "predict", "explain", "score", ...),
    summed over the invocation; run.json's ``timing.stages_s``."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def add(self, stage: str, t0: float) -> float:
        """Add the time since ``t0`` (``time.perf_counter()``) to ``stage``; returns it."""
        dt = time.perf_counter() - t0
        self.times[stage] = self.times.get(stage, 0.0) + dt
        return dt

    @contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, t0)


class Progress:
    """Progress bars on stderr (silent with ``enabled=False``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def bar(self, **kw: object) -> tqdm:
        return tqdm(disable=not self.enabled, file=sys.stderr, dynamic_ncols=True, **kw)

    def write(self, msg: str) -> None:
        tqdm.write(msg, file=sys.stderr)


class ModelLoader:
    """The run's models by name, each loaded once (trained on the suite's dataset, or on
    ``data.train_dataset`` when the suite names one: the zoo for
    the shipped models, else the checkpoint cache, training on a miss), with the provenance of
    its weights recorded in ``cells/_checkpoints/<name>.json``."""

    def __init__(self, plan: Plan, out: Path, clock: Clock, progress: Progress) -> None:
        self.plan, self.out, self.clock, self.progress = plan, out, clock, progress
        self._models: dict[str, nn.Module] = {}
        self._keys: dict[str, str] = {}

    def __call__(self, name: str) -> nn.Module:
        if name not in self._models:
            from bench.models import get_card, load_model_with_provenance

            how = self.plan.loading
            with self.clock.stage("models"):
                if name in self.plan.user_models:  # a user's own model, adapted by the plan
                    model, prov = self.plan.user_models[name]
                    model = model.to(how.device)
                elif name in how.checkpoints:  # --checkpoint: a weights file instead of the zoo / cache
                    from bench.models.load import load_model_file

                    model, prov = load_model_file(name, how.checkpoints[name], how.device)
                else:
                    model, prov = load_model_with_provenance(
                        name, device=how.device, train_if_missing=True, progress=self.progress.enabled,
                        seed=how.model_seed, cache_dir=how.cache_dir or None,
                        dataset=how.train_dataset, params=how.train_params, log=self.progress.write)
                self._models[name] = model
                card = self.plan.cards[name] if name in self.plan.cards else get_card(name)
                self._keys[name] = model_key(prov.sha256, card)
                write_atomic(self.out / "cells" / "_checkpoints" / f"{name}.json",
                             dump_json({"model": name, **prov.as_dict()}))
        return self._models[name]

    def key(self, name: str) -> str:
        """Names model ``name``'s weights and card in cache and memo keys (:func:`bench.pipeline.memo.model_key`)."""
        self(name)
        return self._keys[name]


def cache_root(cache_dir: str) -> Path:
    """The cache folder shared with the checkpoint cache: ``run.cache_dir``, else
    ``$SNNXAI_CACHE``, else the user cache (see :func:`bench.models.cache.cache_dir`)."""
    from bench.models.cache import cache_dir as resolve

    return resolve(cache_dir or None)


def untrained_models(plan: Plan) -> dict[str, str]:
    """The plan's registered models that have no checkpoint for the suite's training data (not
    in the zoo, not in the cache), each with why the zoo's does not fit. Loading them would
    train them for minutes; reads sidecars only."""
    from bench.models.load import trained_checkpoint

    how = plan.loading
    dataset, params = how.train_dataset, how.train_params
    out = {}
    for name, card in plan.cards.items():
        if name in plan.user_models or name in how.checkpoints:
            continue
        if trained_checkpoint(card, dataset=dataset, params=params, seed=how.model_seed,
                              cache_dir=how.cache_dir or None) is None:
            out[name] = _zoo_difference(card, dataset, params, how.model_seed)
    return out


def _zoo_difference(card: ModelCard, dataset: str, params: dict[str, object] | None, seed: int) -> str:
    """Why the shipped checkpoint of ``card`` does not fit (a few words), or "" without one."""
    from bench.config import to_plain
    from bench.models.build import data_config
    from bench.models.cache import read_meta, recorded_card
    from bench.models.zoo import zoo_path

    path = zoo_path(card.name)
    if not path.exists():
        return "not in the shipped zoo"
    meta = read_meta(path)
    if recorded_card(meta) != card:
        return "its card differs from the zoo's"
    if meta.get("seed") != seed:
        return f"run.model_seed {seed} (the zoo's is {meta.get('seed')})"
    want, have = to_plain(data_config(card, dataset, params)), meta.get("data", {})
    if want.get("dataset") != have.get("dataset"):
        return f"trained on {want.get('dataset')} (the zoo's on {have.get('dataset')})"
    a, b = want.get("params", {}), have.get("params", {})
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "training data differs from the zoo's: " + (", ".join(f"{k}={a.get(k)!r}" for k in keys) or "content")


def require_trained(plan: Plan) -> None:
    """A BenchError naming the models that would be trained (``snnxai run`` without
    ``--train-missing``): training takes minutes, so it is never started by surprise."""
    missing = untrained_models(plan)
    if missing:
        what = "; ".join(f"{name} ({why})" for name, why in missing.items())
        first = next(iter(missing))
        raise BenchError(f"no trained checkpoint for {what}: training takes minutes; add --train-missing "
                         f"to train it now, or `snnxai train {first}` first")


def check_loadable(plan: Plan) -> None:
    """Load (on the CPU, then drop) every model of ``plan`` that has weights to read: its zoo or
    cache checkpoint, or its ``--checkpoint`` file, through the loaders the run uses. A damaged,
    missing-sidecar, cut or hostile checkpoint is the BenchError the run would hit later --
    raised before the run writes its manifest, so a refused run leaves nothing behind. Models
    without a checkpoint (to be trained) and the user's own models (built by the plan already)
    are skipped."""
    from bench.models.load import load_model_file, load_model_with_provenance, trained_checkpoint

    how = plan.loading
    dataset, params = how.train_dataset, how.train_params
    for name, card in plan.cards.items():
        if name in plan.user_models:
            continue
        if name in how.checkpoints:
            load_model_file(name, how.checkpoints[name])
        elif trained_checkpoint(card, dataset=dataset, params=params, seed=how.model_seed,
                                cache_dir=how.cache_dir or None) is not None:
            load_model_with_provenance(name, train_if_missing=False, seed=how.model_seed,
                                       cache_dir=how.cache_dir or None, dataset=dataset, params=params)
