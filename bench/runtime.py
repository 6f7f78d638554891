"""The run's shared resources: stage timers, progress bars and the model loader.

One of each per invocation, created by :func:`bench.run.run_suite` and handed to every cell
(:class:`bench.cell.CellContext`); none of them knows about the runner.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from torch import nn
from tqdm.auto import tqdm

from bench.memo import model_key
from bench.rundir import dump_json
from bench.store import write_atomic

if TYPE_CHECKING:
    from bench.plan import Plan


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

            suite = self.plan.suite
            with self.clock.stage("models"):
                if name in self.plan.user_models:  # a user's own model, adapted by the plan
                    model, prov = self.plan.user_models[name]
                    model = model.to(suite.run.device)
                else:
                    dataset, params = suite.data.training_data()
                    model, prov = load_model_with_provenance(
                        name, device=suite.run.device, train_if_missing=True, progress=self.progress.enabled,
                        seed=suite.run.model_seed, cache_dir=suite.run.cache_dir or None,
                        dataset=dataset, params=params, log=self.progress.write)
                self._models[name] = model
                card = self.plan.cards[name] if name in self.plan.cards else get_card(name)
                self._keys[name] = model_key(prov.sha256, card)
                write_atomic(self.out / "cells" / "_checkpoints" / f"{name}.json",
                             dump_json({"model": name, **prov.as_dict()}))
        return self._models[name]

    def key(self, name: str) -> str:
        """Names model ``name``'s weights and card in cache and memo keys (:func:`bench.memo.model_key`)."""
        self(name)
        return self._keys[name]


def cache_root(cache_dir: str) -> Path:
    """The cache folder shared with the checkpoint cache: ``run.cache_dir``, else
    ``$SNNXAI_CACHE``, else the user cache (see :func:`bench.models.cache.cache_dir`)."""
    from bench.models.cache import cache_dir as resolve

    return resolve(cache_dir or None)
