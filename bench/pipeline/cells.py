"""The loop over a run's cells in this process: every planned cell not yet written, grouped by
probed model, each given the :class:`~bench.pipeline.cell.CellContext` it reads.

Below both :mod:`bench.pipeline.run` (which calls it through an executor) and
:mod:`bench.pipeline.executors` (the local executor runs :func:`run_cells`; the Ray executor runs
one cell per task with :func:`cell_context` and :func:`predictions`), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.config import config_hash, to_plain
from bench.pipeline.cell import CellContext, run_cell
from bench.pipeline.memo import Memo
from bench.pipeline.plan import Cell, Plan
from bench.pipeline.runtime import Clock, ModelLoader, Progress, cache_root
from bench.pipeline.shard import ShardData
from bench.store import rundir, write_atomic
from bench.store.heatcache import HeatmapCache


def run_cells(plan: Plan, data: ShardData, out: Path, clock: Clock, bars: Progress) -> None:
    """Every planned cell not yet written in ``out``, grouped by probed model."""
    todo = [c for c in plan.cells if not rundir.cell_done(out, c.model, c.method)]
    if len(todo) < len(plan.cells):
        bars.write(f"resuming: {len(plan.cells) - len(todo)} of {len(plan.cells)} cells already done")
    models = ModelLoader(plan, out, clock, bars)
    heatmaps = HeatmapCache(cache_root(plan.run.cache_dir) / "heatmaps")
    heatmaps.optional = True  # a full or read-only cache disk: a warning, the run goes on uncached
    memo = Memo()  # the run's shared work: every cell of a model shares its adversarial batches
    overall = bars.bar(total=len(todo), desc="cells")
    for model in plan.models:
        cells = [c for c in todo if c.model == model]
        if not cells:
            continue
        preds = predictions(models, model, data, out, clock, plan.run.seed)
        for cell in cells:
            overall.set_postfix_str(f"{cell.model}/{cell.method or '(model scope)'}")
            run_cell(cell_context(plan, cell, data, preds, models, heatmaps, clock, bars, out, memo))
            overall.update(1)
    overall.close()


def predictions(models: ModelLoader, name: str, data: ShardData, out: Path, clock: Clock,
                seed: int) -> tuple[torch.Tensor, ...]:
    """The probed model's prediction ``[B]`` per batch; records cells/<model>/model.json."""
    model = models(name)
    with clock.stage("predict"), torch.no_grad():
        preds = tuple(model(b.x, sample_id=b.sample_id, seed=seed).argmax(1) for b in data.batches)
    rec = {"model": name, "n": len(data.sample_ids),
           "n_correct": sum(int((p == b.y).sum()) for p, b in zip(preds, data.batches))}
    write_atomic(out / "cells" / name / "model.json", rundir.dump_json(rec))
    return preds


def cell_context(plan: Plan, cell: Cell, data: ShardData, preds: tuple[torch.Tensor, ...],
                 models: ModelLoader, heatmaps: HeatmapCache, clock: Clock, bars: Progress,
                 out: Path, memo: Memo | None = None) -> CellContext:
    """What ``cell`` reads: its models and method, resolved by the plan, and the run's resources
    (``memo``: the run's shared work; None = a fresh one for this cell)."""
    from bench.registry import METHODS
    from bench.variants import base_name

    run, ds = plan.run, plan.dataset
    explains = bool(cell.method)
    entry = METHODS.get(base_name(cell.method)) if explains else None  # a swept variant: its base method
    params = plan.method_params[cell.method] if explains else None
    job = {"method": cell.method, "params": to_plain(params), "layer": cell.layer,
           "seed": run.seed, "post": to_plain(plan.postprocess)}
    targets = tuple(b.y for b in data.batches) if run.target == "label" else preds
    dataset, split = plan.data_name
    return CellContext(
        cell=cell, run_id=plan.run_id, dataset=dataset, split=split,
        seed=run.seed, examples=run.examples,
        data_mean=tuple(ds.mean), data_std=tuple(ds.std),
        method=entry, method_params=params, method_card=plan.cards[cell.method_model] if explains else None,
        post=plan.postprocess, job_key=config_hash(job) if explains else "",
        metrics=tuple(plan.explanation_metrics if explains else plan.model_metrics_for(cell.model)),
        gallery=plan.gallery_metric if explains else None,
        data=data, preds=preds, targets=targets,
        model=models(cell.model),
        method_model=models(cell.method_model) if explains else None,
        method_model_key=models.key(cell.method_model) if explains else "",
        load_model=models, heatmaps=heatmaps, memo=memo if memo is not None else Memo(), clock=clock, progress=bars, out=out)
