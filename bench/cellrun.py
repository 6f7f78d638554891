"""One cell of a run: explain every sample of a (model, method), then score the maps.

A :class:`CellRun` explains the shard's batches once (through the heatmap cache), calls every
explanation-scope metric on those maps (per-time-step metrics also on each step's maps, rows
with ``timestep`` set), turns the :class:`~metrics.base.Scores` into long rows (curves as one
row per point), saves a few samples' maps for the gallery and writes the cell atomically. A
model-scope cell (method "") runs the model-scope metrics once per model instead.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from bench import rundir
from bench.attacks.cache import tensor_digest
from bench.config import config_hash
from bench.plan import Cell
from bench.registry import METRICS

if TYPE_CHECKING:
    from bench.run import Runner


@dataclasses.dataclass(frozen=True)
class View:
    """Batch i (or its first samples, ``rows``) with its explanation and explainers.

    ``explain_full(model, x)`` re-runs the cell's method on ``model`` for input ``x`` (same
    params, layer, target, seed) and returns the whole :class:`~bench.explain.Explanation`,
    memoized per (model, x): the metrics' ``explain_fn`` (time-aggregated maps ``[B, H, W]``)
    and ``step_fn(s)`` (step s's maps, for per-time-step metrics) read the same explanation,
    so scoring T steps does not re-explain T times."""

    i: int
    rows: torch.Tensor | None
    batch: Any
    expl: Any
    explain_full: Any
    explain_fn: Any
    _steps: dict = dataclasses.field(default_factory=dict)

    def step_fn(self, s: int) -> Any:
        """``(model, x) -> [B, H, W]`` maps of time step ``s``. One closure per (view, step):
        :func:`bench.attacks.cache.attacked_maps` tells explanation jobs apart by what their
        function captures, so these must be closures over this view, never shared methods."""
        if s not in self._steps:
            full = self.explain_full
            self._steps[s] = lambda model, x: full(model, x).steps[s]
        return self._steps[s]


class CellRun:
    """Explain then score one (model, method) cell, and write it."""

    def __init__(self, runner: Runner, cell: Cell, preds: list[torch.Tensor]):
        self.r, self.cell, self.preds = runner, cell, preds
        self.model = runner.model(cell.model)
        self.cost: dict[tuple[str, str], dict] = {}
        self.frames: list[pd.DataFrame] = []
        self.adv: list[dict] = []   # attacked example pairs per batch (see attacked_examples)
        self.layer = ""

    def targets(self) -> list[torch.Tensor]:
        if self.r.suite.run.target == "label":
            return [b.y for b in self.r.batches]
        return self.preds

    def counted(self, stage: str, metric: str, fn: Any) -> Any:
        """Run ``fn()`` counting the passes of the models involved; add to the cost record
        of (stage, metric)."""
        from bench.cost import count_passes

        mods = {id(m): m for m in (self.model, self.r.models.get(self.cell.method_model)) if m is not None}
        t0 = time.perf_counter()
        with count_passes(*mods.values()) as count:
            out = fn()
        wall = self.r.timed(stage, t0)
        rec = self.cost.setdefault((stage, metric), {
            "model": self.cell.model, "method": self.cell.method, "metric": metric, "stage": stage,
            "n_samples": len(self.r.sample_ids), "wall_s": 0.0, "forwards": 0, "samples": 0, "backwards": 0})
        rec["wall_s"] += wall
        for k, v in count.as_dict().items():
            rec[k] += v
        return out

    # -- explanation cells --------------------------------------------------------------
    def run(self) -> None:
        """Explain every batch (one pass, through the heatmap cache), then score batch by
        batch: all metrics see one batch in turn, through the same view objects, so metrics
        that share work on the same maps (the two randomization metrics, the stability
        metrics) find it in their memo. ``[limits]`` restricts a metric to the run's first
        samples (expensive metrics)."""
        if not self.cell.method:
            return self.run_model_scope()
        from bench.explain import explain_batch, resolve_layer

        c, r = self.cell, self.r
        params = r.suite.methods[c.method]
        mm, mcard = r.model(c.method_model), self.r.plan.cards[c.method_model]
        self.layer = resolve_layer(params, mm, mcard, None)
        bar = r.bar(total=len(r.batches), desc=f"explain {c.model}/{c.method}", leave=False)
        # weights alone do not identify a spiking model (encoding, T and neurons live in the card)
        model_key = f"{r.keys[c.method_model]['sha256']}:{config_hash(mcard)}"

        def explain_all() -> list[Any]:
            out = []
            for b, t in zip(r.batches, self.targets()):
                out.append(explain_batch(c.method, params, mm, mcard, b, target=t, seed=r.seed,
                                         post=r.suite.postprocess, cache=r.cache,
                                         model_key=model_key))
                bar.update(1)
            return out

        expls = self.counted("explain", "", explain_all)
        bar.close()
        metrics = r.plan.metrics("explanation")
        bar = r.bar(total=len(r.batches) * len(metrics), desc=f"score {c.model}/{c.method}", leave=False)
        for i, (e, t) in enumerate(zip(expls, self.targets())):
            views: dict[int | None, View | None] = {}   # one view per sample limit, shared by metrics
            for metric in metrics:
                limit = r.suite.limits.get(metric)
                if limit not in views:
                    views[limit] = self.view(i, e, t, limit, params, mcard)
                if views[limit] is not None:
                    self.counted("score", metric, lambda: self.score_batch(metric, i, views[limit], mm))
                bar.update(1)
            self.attacked_examples(i, views, e, t, params, mcard, mm)
        bar.close()
        self.save_examples(expls)
        self.write()

    def view(self, i: int, e: Any, t: torch.Tensor, limit: int | None, params: Any, mcard: Any) -> View | None:
        """Batch i as a metric sees it: the samples at positions < ``limit`` (all if None), their
        maps, and an explainer for them (None if the batch has no such sample)."""
        from bench.explain import explain_batch

        r, c = self.r, self.cell
        b, mm = r.batches[i], r.model(c.method_model)
        skip, rows = self.limit_rows(i, limit)
        if skip:
            return None
        if rows is not None:
            b, t = b.select(rows), t[rows]
            e = dataclasses.replace(
                e, maps=e.maps[rows], degenerate=e.degenerate[rows],
                steps=None if e.steps is None else e.steps[:, rows],
                steps_degenerate=None if e.steps is None else e.steps_degenerate[:, rows])

        memo: dict[str, Any] = {}   # x digest -> explanation on the cell's own model

        def explain_full(model: Any, x: torch.Tensor) -> Any:
            """The same method, params, layer and target on ``model`` for input ``x``.

            Memoized only for the cell's own (method) model, whose weights are fixed for the
            whole cell; other models are never memoized: the sanity checks' cascade mutates one
            randomized copy in place from stage to stage, so object identity does not name weights."""
            run = lambda: explain_batch(c.method, params, model, mcard, dataclasses.replace(b, x=x),
                                        target=t, seed=r.seed, post=r.suite.postprocess)
            if model is not mm:
                return run()
            key = tensor_digest(x)
            if key not in memo:
                memo[key] = run()
            return memo[key]

        return View(i, rows, b, e, explain_full, lambda model, x: explain_full(model, x).maps)

    def attacked_examples(self, i: int, views: dict, e: Any, t: torch.Tensor, params: Any, mcard: Any,
                          mm: Any) -> None:
        """The gallery's clean-vs-attacked pairs for the example samples of batch i: the inputs
        the first stability ("attacked") metric of the plan compared (the same cached attacks,
        crafted white-box on the method's model) and the method's maps for them."""
        r, k = self.r, self.r.suite.run.examples
        name = next((m for m in r.plan.metrics("explanation") if METRICS.get(m).meta.get("attacked")), None)
        pos = np.asarray(r.batch_pos[i])
        if name is None or not (pos < k).any():
            return
        from bench.data.base import denormalize
        from metrics.robustness import attacked_inputs

        limit = r.suite.limits.get(name)
        # the view the metric scored (its attacks are cached) when it holds every example sample
        v = views.get(limit) if limit is None or limit >= k else self.view(i, e, t, k, params, mcard)
        if v is None:
            return
        ds, mp = r.plan.dataset, r.suite.metrics[name]
        xs = attacked_inputs(mm, v.batch, mp, r.seed, tuple(ds.mean), tuple(ds.std))
        pv = pos if v.rows is None else pos[v.rows.cpu().numpy()]
        sel = torch.as_tensor(np.flatnonzero(pv < k), device=v.batch.x.device)
        full = [v.explain_full(mm, x) for x in xs]
        with torch.no_grad():
            preds = [mm(x, sample_id=v.batch.sample_id, seed=r.seed).argmax(1)[sel] for x in xs]
        rec = {"position": pv[sel.cpu().numpy()], "sample_id": v.batch.sample_id[sel],
               "points": np.asarray(mp.epsilons, np.float64),
               "maps": torch.stack([f.maps[sel] for f in full]),
               "image": torch.stack([denormalize(x[sel], ds.mean, ds.std).clamp(0, 1) for x in xs]),
               "pred": torch.stack(preds)}
        self.adv.append(rec)

    def limit_rows(self, i: int, limit: int | None) -> tuple[bool, torch.Tensor | None]:
        """(skip, rows): batch i's samples at run positions < ``limit`` (rows None = all)."""
        if limit is None:
            return False, None
        pos = self.r.batch_pos[i]
        keep = [j for j, p in enumerate(pos) if p < limit]
        if len(keep) == len(pos):
            return False, None
        return not keep, torch.tensor(keep, dtype=torch.long, device=self.r.batches[i].x.device)

    def score_batch(self, metric: str, i: int, v: View, mm: Any) -> None:
        """Metric ``metric`` on a view's maps (and on each step's maps if per-time-step)."""
        entry, e = METRICS.get(metric), v.expl
        maps = [(None, e.maps, e.degenerate, v.explain_fn)]
        if entry.meta.get("per_timestep") and e.steps is not None:
            maps += [(s, e.steps[s], e.steps_degenerate[s], v.step_fn(s)) for s in range(e.steps.shape[0])]
        for step, m, deg, fn in maps:
            inp = self.score_input(entry, v.batch, m, deg, mm, fn)
            self.add_rows(metric, i, entry.obj(inp, self.r.suite.metrics[metric]), step, deg, v.rows)

    def score_input(self, entry: Any, b: Any, maps: torch.Tensor, deg: torch.Tensor | None,
                    mm: Any, explain_fn: Any) -> Any:
        """What a metric sees; the model and explainer only when its ``needs`` ask for them."""
        from metrics.base import ScoreInput

        needs = set(entry.meta["needs"])
        model, seed = self.model, self.r.seed
        ds = self.r.plan.dataset
        return ScoreInput(
            maps=maps, batch=b, degenerate=deg, seed=seed,
            data_mean=tuple(ds.mean), data_std=tuple(ds.std),
            model_fn=(lambda x, sid: model(x, sample_id=sid, seed=seed)) if "model" in needs else None,
            model=model if "model" in needs else None,
            method_model=mm if "explainer" in needs else None,
            explain_fn=explain_fn if "explainer" in needs else None,
            load_model=self.r.model if "model" in needs else None)

    # -- model-scope cells ----------------------------------------------------------------
    def run_model_scope(self) -> None:
        r = self.r
        size = int(r.batches[0].x.shape[-1])
        for i, b in enumerate(r.batches):
            for metric in r.plan.metrics("model"):
                skip, rows = self.limit_rows(i, r.suite.limits.get(metric))
                if skip:
                    continue
                sub = b if rows is None else b.select(rows)
                entry = METRICS.get(metric)
                # model-scope metrics read no maps; they get all-zero maps of the right shape
                maps = torch.zeros(len(sub), size, size, device=b.x.device)
                inp = self.score_input(entry, sub, maps, None, None, None)
                scores = self.counted("score", metric, lambda: entry.obj(inp, r.suite.metrics[metric]))
                self.add_rows(metric, i, scores, None, None, rows)
        self.write()

    # -- rows, examples, writing -------------------------------------------------------------
    def add_rows(self, metric: str, i: int, scores: Any, step: int | None,
                 deg: torch.Tensor | None, rows: torch.Tensor | None = None) -> None:
        """Rows of one metric call on batch i (or its ``rows``): per-sample values, curve points."""
        sel = (lambda a: a) if rows is None else (lambda a: a[rows.to(a.device)])
        sid = sel(self.r.batches[i].sample_id).cpu().numpy()
        B = len(sid)
        values = scores.values.detach().double().cpu().reshape(-1).numpy()
        if values.shape[0] != B:
            raise RuntimeError(f"metric {metric!r} returned {values.shape[0]} values for {B} samples")
        base = {"sample_id": sid, "target": sel(self.targets()[i]).cpu().numpy(),
                "pred": sel(self.preds[i]).cpu().numpy(), "metric": metric,
                "timestep": np.nan if step is None else float(step),
                "degenerate": np.zeros(B, np.int64) if deg is None else deg.cpu().numpy().astype(np.int64)}
        self.frames.append(pd.DataFrame({**base, "point": np.nan, "value": values}))
        if scores.curve is not None:
            curve = scores.curve.detach().double().cpu().numpy()
            P = curve.shape[1]
            if scores.points is None or len(scores.points) != P or curve.shape[0] != B:
                raise RuntimeError(f"metric {metric!r} returned a curve {curve.shape} with "
                                   f"{None if scores.points is None else len(scores.points)} points")
            rep = {k: (np.repeat(v, P) if isinstance(v, np.ndarray) else v) for k, v in base.items()}
            self.frames.append(pd.DataFrame({**rep, "point": np.tile(np.asarray(scores.points, float), B),
                                             "value": curve.reshape(-1)}))

    def save_examples(self, expls: list[Any]) -> None:
        sel = self.r.example_rows()
        if not len(sel):
            return
        arrays = {"position": self.r.positions[sel],
                  "sample_id": np.array(self.r.sample_ids)[sel],
                  "maps": torch.cat([e.maps for e in expls]).cpu().numpy()[sel].astype(np.float16),
                  "degenerate": torch.cat([e.degenerate for e in expls]).cpu().numpy()[sel],
                  "target": torch.cat(self.targets()).cpu().numpy()[sel],
                  "pred": torch.cat(self.preds).cpu().numpy()[sel]}
        if expls[0].steps is not None:
            arrays["steps"] = torch.cat([e.steps for e in expls], 1).cpu().numpy()[:, sel].astype(np.float16)
        if self.adv and sum(len(a["position"]) for a in self.adv) == len(sel):
            arrays.update(self.attacked_arrays())
        rundir.write_examples(self.r.out / "examples" / self.cell.model / f"{self.cell.method}.npz", arrays)

    def attacked_arrays(self) -> dict[str, np.ndarray]:
        """The method npz's ``adv_*`` arrays (``adv_maps [E, n, H, W]``, ``adv_points [E]``), and
        ``examples/<method_model>/attacked.npz`` (the attacked inputs and the predictions of the
        model they were crafted on; identical for every cell on that model)."""
        cat = lambda key, axis: torch.cat([a[key] for a in self.adv], axis).cpu().numpy()
        pos = np.concatenate([a["position"] for a in self.adv])
        f16 = lambda a: a.astype(np.float16)
        rundir.write_examples(
            self.r.out / "examples" / self.cell.method_model / "attacked.npz",
            {"position": pos, "sample_id": cat("sample_id", 0), "points": self.adv[0]["points"],
             "image": f16(cat("image", 1)),
             "pred": cat("pred", 1).astype(np.int64)})
        # time-aggregated maps only: per-step stability is in the results rows, and per-step
        # attacked maps would triple the committed examples
        return {"adv_points": self.adv[0]["points"], "adv_maps": f16(cat("maps", 1))}

    def write(self) -> None:
        c, r = self.cell, self.r
        rows = pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame()
        if len(rows):
            rows = rows.assign(run_id=r.plan.run_id, dataset=r.suite.data.dataset,
                               split=r.suite.data.split, model=c.model, method=c.method,
                               method_model=c.method_model, layer=self.layer)
        cost = [{**v, "wall_s": round(v["wall_s"], 4)} for v in self.cost.values()]
        meta = {**dataclasses.asdict(c), "layer": self.layer, "cost": cost}
        rundir.write_cell(r.out, c.model, c.method, rows, meta)
