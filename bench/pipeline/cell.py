"""One cell of a run: explain a (probed model, method) on every sample, score the maps, write it.

:func:`run_cell` is the cell's pipeline, read top to bottom:

1. **explain** (:func:`explain_all`): the method on every batch of the shard, once, through the
   heatmap cache: one :class:`~bench.explain.Explanation` per batch.
2. **score** (:func:`score_batch`): batch by batch, every explanation-scope metric on the
   :class:`View` it scores (the batch's samples inside its ``[limits]``), per-time-step metrics
   also on each step's maps; then the gallery's clean-vs-attacked pairs of the batch.
3. **rows** (:func:`add_rows`): each :class:`~metrics.base.Scores` becomes long rows (one per
   sample, plus one per curve point).
4. **write** (:func:`write_cell`): the rows, the cost record and the gallery examples, atomically
   (a written cell is done: a resumed run skips it).

A model-scope cell (method "") scores the model-scope metrics per batch instead
(:func:`score_model_scope`, input :class:`~metrics.base.ModelScoreInput`).

Everything a cell reads is in its :class:`CellContext`, fixed before it starts. The metrics of
one batch share work through ``ctx.memo`` under explicit keys (:mod:`bench.pipeline.memo`); the memo is
cleared after each batch.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from bench.data.base import Batch
from bench.explain import Explanation, explain_resolved
from bench.models.card import ModelCard
from bench.pipeline.gallery import AttackedExamples, attacked_arrays, attacked_examples
from bench.pipeline.memo import Memo
from bench.pipeline.plan import Cell, PlannedMetric
from bench.pipeline.runtime import Clock, ModelLoader, Progress
from bench.pipeline.services import Services
from bench.pipeline.shard import ShardData
from bench.registry import Entry
from bench.rss import peak_rss_gib, rss_gib
from bench.store import rundir, tensor_digest
from bench.store.heatcache import HeatmapCache
from methods.postprocess import PostprocessConfig
from metrics.base import AttackedInputs, ModelScoreInput, ScoreInput, Scores

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, eq=False)
class CellContext:
    """Everything one cell reads, resolved before it starts.

    cell: (probed model, method, the model the method runs on, its target layer).
    run_id / dataset / split: the row labels. seed: the run seed. examples: the gallery's
    first k samples. data_mean / data_std: the dataset normalization.
    method / method_params / method_card / post: the method's registry entry, its resolved
    params, the card of its model (all None for model scope), the post-processing.
    job_key: names (method, params, layer, seed, post) in memo keys.
    metrics: the planned metrics of this cell's scope, in suite order. gallery: the metric
    whose attacked inputs the gallery shows (None: no gallery).
    data: the shard's batches. preds / targets: per batch ``[B]``: the probed model's
    prediction and the class each method explains (label or prediction, per the suite).
    model: the probed model. method_model: the model the method runs on (None: model scope),
    method_model_key: names its weights and card. load_model: any model by name, resolved
    like these (the transfer attack's source).
    heatmaps: the on-disk heatmap cache. memo: the batch's shared work. clock / progress:
    stage timers and bars. out: the run directory.
    """

    cell: Cell
    run_id: str
    dataset: str
    split: str
    seed: int
    examples: int
    data_mean: tuple[float, ...]
    data_std: tuple[float, ...]
    method: Entry | None
    method_params: object
    method_card: ModelCard | None
    post: PostprocessConfig
    job_key: str
    metrics: tuple[PlannedMetric, ...]
    gallery: PlannedMetric | None
    data: ShardData
    preds: tuple[torch.Tensor, ...]
    targets: tuple[torch.Tensor, ...]
    model: nn.Module
    method_model: nn.Module | None
    method_model_key: str
    load_model: ModelLoader
    heatmaps: HeatmapCache
    memo: Memo
    clock: Clock
    progress: Progress
    out: Path


@dataclasses.dataclass(frozen=True, eq=False)
class View:
    """Batch ``i`` as a metric sees it: the samples at run positions below its limit.

    rows: their indices in batch i (None = all). batch / target / expl: those samples, the
    classes explained and their :class:`~bench.explain.Explanation` (sliced from the batch's)."""

    i: int
    rows: torch.Tensor | None
    batch: Batch
    target: torch.Tensor
    expl: Explanation


class CellRecord:
    """What a cell has produced so far: result frames, cost per (stage, metric), gallery pairs."""

    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.cost: dict[tuple[str, str], dict[str, str | int | float]] = {}
        self.attacked: list[AttackedExamples] = []
        self.examples: dict[str, str] = {}  # example files written: path in the run dir -> arrays digest
        self.found: dict[int, AttackedInputs] = {}  # per batch: the gallery metric's attacked inputs


# -- the cell's pipeline ----------------------------------------------------------------------
def run_cell(ctx: CellContext) -> None:
    """Explain, score, build rows and write one cell."""
    rec = CellRecord()
    if not ctx.cell.method:
        score_model_scope(ctx, rec)
        write_cell(ctx, rec)
        return
    expls = explain_all(ctx, rec)
    bar = ctx.progress.bar(total=len(expls) * len(ctx.metrics),
                           desc=f"score {ctx.cell.model}/{ctx.cell.method}", leave=False)
    for i, e in enumerate(expls):
        score_batch(ctx, rec, i, e, bar)
        ctx.memo.clear()   # keys name their inputs: a later batch never hits these entries
    bar.close()
    save_examples(ctx, rec, expls)
    write_cell(ctx, rec)


def counted(ctx: CellContext, rec: CellRecord, stage: str, metric: str, fn: Callable[[], T]) -> T:
    """Run ``fn()`` counting the forward/backward passes of the cell's models; add them and the
    wall time to the cost record of (stage, metric)."""
    from bench.cost import count_passes

    mods = {id(m): m for m in (ctx.model, ctx.method_model) if m is not None}
    t0 = time.perf_counter()
    with count_passes(*mods.values()) as count:
        out = fn()
    wall = ctx.clock.add(stage, t0)
    c = ctx.cell
    entry = rec.cost.setdefault((stage, metric), {
        "model": c.model, "method": c.method, "metric": metric, "stage": stage,
        "n_samples": len(ctx.data.sample_ids), "wall_s": 0.0, "forwards": 0, "samples": 0, "backwards": 0})
    entry["wall_s"] = float(entry["wall_s"]) + wall
    for k, v in count.as_dict().items():
        entry[k] = int(entry[k]) + v
    return out


# -- 1. explain -------------------------------------------------------------------------------
def explain_all(ctx: CellContext, rec: CellRecord) -> list[Explanation]:
    """The method on every batch of the shard (heatmap cache first), counted as stage "explain"."""
    c, data = ctx.cell, ctx.data
    if ctx.method is None or ctx.method_model is None or ctx.method_card is None:
        raise RuntimeError(f"cell {c} has no method")
    entry, mm, card = ctx.method, ctx.method_model, ctx.method_card
    bar = ctx.progress.bar(total=len(data.batches), desc=f"explain {c.model}/{c.method}", leave=False)

    def run() -> list[Explanation]:
        out = []
        for b, t in zip(data.batches, ctx.targets):
            out.append(explain_resolved(entry, ctx.method_params, c.layer, mm, card, b, target=t,
                                        seed=ctx.seed, post=ctx.post, cache=ctx.heatmaps,
                                        model_key=ctx.method_model_key))
            bar.update(1)
        return out

    expls = counted(ctx, rec, "explain", "", run)
    bar.close()
    return expls


# -- 2. score ---------------------------------------------------------------------------------
def limit_rows(ctx: CellContext, i: int, limit: int | None) -> tuple[bool, torch.Tensor | None]:
    """(skip, rows): batch i's samples at run positions < ``limit`` (rows None = all)."""
    if limit is None:
        return False, None
    pos = ctx.data.batch_pos[i]
    keep = [j for j, p in enumerate(pos) if p < limit]
    if len(keep) == len(pos):
        return False, None
    return not keep, torch.tensor(keep, dtype=torch.long, device=ctx.data.batches[i].x.device)


def make_view(ctx: CellContext, i: int, e: Explanation, limit: int | None) -> View | None:
    """Batch i restricted to run positions < ``limit`` (None if it has no such sample)."""
    b, t = ctx.data.batches[i], ctx.targets[i]
    skip, rows = limit_rows(ctx, i, limit)
    if skip:
        return None
    if rows is not None:
        b, t = b.select(rows), t[rows]
        e = dataclasses.replace(
            e, maps=e.maps[rows], degenerate=e.degenerate[rows],
            steps=None if e.steps is None else e.steps[:, rows],
            steps_degenerate=None if e.steps_degenerate is None else e.steps_degenerate[:, rows])
    return View(i, rows, b, t, e)


def score_batch(ctx: CellContext, rec: CellRecord, i: int, e: Explanation, bar: tqdm) -> None:
    """Every metric on batch i (one view per sample limit, shared by the metrics that have it,
    so they find each other's work in the memo), then the batch's gallery pairs."""
    views: dict[int | None, View | None] = {}
    for metric in ctx.metrics:
        if metric.limit not in views:
            views[metric.limit] = make_view(ctx, i, e, metric.limit)
        v = views[metric.limit]
        if v is not None:
            counted(ctx, rec, "score", metric.name, lambda: score_view(ctx, rec, metric, v))
        bar.update(1)
    if ctx.gallery is not None:
        gallery_pairs(ctx, rec, i, e, views)


def score_view(ctx: CellContext, rec: CellRecord, metric: PlannedMetric, v: View) -> None:
    """``metric`` on a view's maps (and on each step's maps if it is per-time-step)."""
    e = v.expl
    maps: list[tuple[int | None, torch.Tensor, torch.Tensor]] = [(None, e.maps, e.degenerate)]
    if metric.per_timestep and e.steps is not None and e.steps_degenerate is not None:
        maps += [(s, e.steps[s], e.steps_degenerate[s]) for s in range(e.steps.shape[0])]
    elif metric.per_timestep and "step_mask" in metric.needs and v.batch.step_mask is not None:
        # a method without per-step maps: its one map, scored against every step's mask
        maps += [(s, e.maps, e.degenerate) for s in range(v.batch.step_mask.shape[1])]
    for step, m, deg in maps:
        scores = metric.fn(score_input(ctx, metric, v, m, deg, step), metric.params)
        if step is None and metric is ctx.gallery and scores.attacked is not None:
            rec.found[v.i] = scores.attacked
        add_rows(ctx, rec, metric.name, v.i, scores, step, deg, v.rows)


def services(ctx: CellContext, batch: Batch, target: torch.Tensor | None, step: int | None) -> Services:
    """The memoized callables of a metric's input for ``batch`` (:mod:`bench.pipeline.services`):
    the cell's models resolved by the loader, the method re-run for the explained ``target``."""
    c = ctx.cell
    rerun = None
    if ctx.method is not None and ctx.method_card is not None and target is not None:
        entry, card = ctx.method, ctx.method_card

        def rerun(model: nn.Module, key: str, x: torch.Tensor) -> Explanation:
            return explain_resolved(entry, ctx.method_params, c.layer, model, card,
                                    dataclasses.replace(batch, x=x), target=target, seed=ctx.seed, post=ctx.post)

    load = ctx.load_model
    return Services(
        memo=ctx.memo, batch=batch, seed=ctx.seed, data_mean=ctx.data_mean, data_std=ctx.data_std,
        probed=(ctx.model, load.key(c.model)),
        method=None if ctx.method_model is None else (ctx.method_model, ctx.method_model_key),
        named=lambda name: (load(name), load.key(name)), rerun=rerun,
        job="" if target is None else f"{ctx.job_key}|target={tensor_digest(target)}", step=step)


def score_input(ctx: CellContext, metric: PlannedMetric, v: View, maps: torch.Tensor,
                deg: torch.Tensor, step: int | None) -> ScoreInput:
    """What an explanation-scope metric sees; the model and the services only when its
    ``needs`` ask for them."""
    model, seed = ctx.model, ctx.seed
    uses_model, explains = "model" in metric.needs, "explainer" in metric.needs
    sv = services(ctx, v.batch, v.target, step) if (uses_model or explains) else None
    return ScoreInput(
        maps=maps, batch=v.batch, degenerate=deg, seed=seed, data_mean=ctx.data_mean, data_std=ctx.data_std,
        timestep=step, steps=v.expl.steps,
        model_fn=(lambda x, sid: model(x, sample_id=sid, seed=seed)) if uses_model else None,
        explain=sv.explain if sv is not None and explains else None,
        attack=sv.attack if sv is not None and uses_model and explains else None)


def gallery_pairs(ctx: CellContext, rec: CellRecord, i: int, e: Explanation,
                  views: dict[int | None, View | None]) -> None:
    """The gallery's clean-vs-attacked pairs for the example samples of batch i: the attacked
    inputs the gallery metric returned (:func:`bench.pipeline.gallery.attacked_examples`)."""
    g, k = ctx.gallery, ctx.examples
    pos = np.asarray(ctx.data.batch_pos[i])
    if g is None or ctx.method_model is None or not (pos < k).any():
        return
    v = views.get(g.limit) if g.limit is None or g.limit >= k else make_view(ctx, i, e, k)
    if v is None:
        return
    found = rec.found.get(i) if v is views.get(g.limit) else None
    if found is None:  # the metric's [limits] left the example samples out: run it on them once
        found = g.fn(score_input(ctx, g, v, v.expl.maps, v.expl.degenerate, None), g.params).attacked
    if found is None:
        raise RuntimeError(f"metric {g.name!r} is marked attacked but returned no attacked inputs")
    pv = pos if v.rows is None else pos[v.rows.cpu().numpy()]
    sv = services(ctx, v.batch, v.target, None)
    rec.attacked.append(attacked_examples(ctx.method_model, sv.explanation, v.batch, pv, k, found,
                                          ctx.seed, ctx.data_mean, ctx.data_std))


def score_model_scope(ctx: CellContext, rec: CellRecord) -> None:
    """The model-scope metrics, batch by batch, on the samples inside each metric's limit."""
    for i, b in enumerate(ctx.data.batches):
        for metric in ctx.metrics:
            skip, rows = limit_rows(ctx, i, metric.limit)
            if skip:
                continue
            view = b if rows is None else b.select(rows)
            inp = ModelScoreInput(batch=view, model=ctx.model, seed=ctx.seed, data_mean=ctx.data_mean,
                                  data_std=ctx.data_std, attack=services(ctx, view, None, None).attack)
            scores = counted(ctx, rec, "score", metric.name, lambda: metric.fn(inp, metric.params))
            add_rows(ctx, rec, metric.name, i, scores, None, None, rows)
        ctx.memo.clear()


# -- 3. rows ----------------------------------------------------------------------------------
def add_rows(ctx: CellContext, rec: CellRecord, metric: str, i: int, scores: Scores, step: int | None,
             deg: torch.Tensor | None, rows: torch.Tensor | None = None) -> None:
    """Rows of one metric call on batch i (or its ``rows``): per-sample values, curve points."""
    sel = (lambda a: a) if rows is None else (lambda a: a[rows.to(a.device)])
    sid = sel(ctx.data.batches[i].sample_id).cpu().numpy()
    B = len(sid)
    values = scores.values.detach().double().cpu().reshape(-1).numpy()
    if values.shape[0] != B:
        raise RuntimeError(f"metric {metric!r} returned {values.shape[0]} values for {B} samples")
    base = {"sample_id": sid, "target": sel(ctx.targets[i]).cpu().numpy(),
            "pred": sel(ctx.preds[i]).cpu().numpy(), "metric": metric,
            "timestep": np.nan if step is None else float(step),
            "degenerate": np.zeros(B, np.int64) if deg is None else deg.cpu().numpy().astype(np.int64)}
    rec.frames.append(pd.DataFrame({**base, "point": np.nan, "value": values}))
    if scores.curve is not None:
        curve = scores.curve.detach().double().cpu().numpy()
        P = curve.shape[1]
        if scores.points is None or len(scores.points) != P or curve.shape[0] != B:
            raise RuntimeError(f"metric {metric!r} returned a curve {curve.shape} with "
                               f"{None if scores.points is None else len(scores.points)} points")
        rep = {k: (np.repeat(v, P) if isinstance(v, np.ndarray) else v) for k, v in base.items()}
        rec.frames.append(pd.DataFrame({**rep, "point": np.tile(np.asarray(scores.points, float), B),
                                        "value": curve.reshape(-1)}))


# -- 4. write ---------------------------------------------------------------------------------
def save_examples(ctx: CellContext, rec: CellRecord, expls: list[Explanation]) -> None:
    """``examples/<model>/<method>.npz``: the example samples' maps (and steps, attacked maps)."""
    data, sel = ctx.data, ctx.data.example_rows
    if not len(sel):
        return
    arrays = {"position": data.positions[sel],
              "sample_id": np.array(data.sample_ids)[sel],
              "maps": torch.cat([e.maps for e in expls]).cpu().numpy()[sel].astype(np.float16),
              "degenerate": torch.cat([e.degenerate for e in expls]).cpu().numpy()[sel],
              "target": torch.cat(ctx.targets).cpu().numpy()[sel],
              "pred": torch.cat(ctx.preds).cpu().numpy()[sel]}
    steps = [e.steps for e in expls if e.steps is not None]
    if len(steps) == len(expls) and steps:
        arrays["steps"] = torch.cat(steps, 1).cpu().numpy()[:, sel].astype(np.float16)
    if rec.attacked and sum(len(a.position) for a in rec.attacked) == len(sel):
        arrays.update(attacked_arrays(ctx.out, ctx.cell.method_model, rec.attacked, rec.examples))
    rel = f"examples/{ctx.cell.model}/{ctx.cell.method}.npz"
    rec.examples[rel] = rundir.write_examples(ctx.out / rel, arrays)


def write_cell(ctx: CellContext, rec: CellRecord) -> None:
    """The cell's rows and its meta record (cost, layer), atomically; the meta marks it done."""
    c = ctx.cell
    rows = pd.concat(rec.frames, ignore_index=True) if rec.frames else pd.DataFrame()
    if len(rows):
        rows = rows.assign(run_id=ctx.run_id, dataset=ctx.dataset, split=ctx.split, model=c.model,
                           method=c.method, method_model=c.method_model, layer=c.layer)
    cost = [{**v, "wall_s": round(float(v["wall_s"]), 4)} for v in rec.cost.values()]
    # the process's memory once the cell is done: a run whose cells keep something alive shows
    # it as a rising rss_gib (run.json "memory"; the leaderboard's 1000-sample run is the check)
    memory = {"rss_gib": round(rss_gib(), 3), "peak_rss_gib": round(peak_rss_gib(), 3)}
    meta = {**dataclasses.asdict(c), "cost": cost, "memory": memory}
    rundir.write_cell(ctx.out, c.model, c.method, rows, meta, rec.examples)
