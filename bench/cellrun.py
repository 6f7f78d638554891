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
from typing import Any

import numpy as np
import pandas as pd
import torch

from bench import rundir
from bench.plan import Cell
from bench.registry import METRICS


class CellRun:
    """Explain then score one (model, method) cell, and write it."""

    def __init__(self, runner: Runner, cell: Cell, preds: list[torch.Tensor]):
        self.r, self.cell, self.preds = runner, cell, preds
        self.model = runner.model(cell.model)
        self.cost: list[dict] = []
        self.frames: list[pd.DataFrame] = []

    def targets(self) -> list[torch.Tensor]:
        if self.r.suite.run.target == "label":
            return [b.y for b in self.r.batches]
        return self.preds

    def counted(self, stage: str, metric: str, fn: Any) -> Any:
        """Run ``fn()`` while counting passes of the models involved; record the cost."""
        from bench.cost import count_passes

        mods = {id(m): m for m in (self.model, self.r.models.get(self.cell.method_model)) if m is not None}
        t0 = time.perf_counter()
        with count_passes(*mods.values()) as count:
            out = fn()
        wall = self.r.timed(stage, t0)
        self.cost.append({"model": self.cell.model, "method": self.cell.method, "metric": metric,
                          "stage": stage, "wall_s": round(wall, 4), "n_samples": len(self.r.sample_ids),
                          **count.as_dict()})
        return out

    # -- explanation cells --------------------------------------------------------------
    def run(self) -> None:
        if not self.cell.method:
            return self.run_model_scope()
        from bench.explain import explain_batch, resolve_layer

        c, r = self.cell, self.r
        params = r.suite.methods[c.method]
        mm, mcard = r.model(c.method_model), self.r.plan.cards[c.method_model]
        self.layer = resolve_layer(params, mm, mcard, None)
        bar = r.bar(total=len(r.batches), desc=f"explain {c.model}/{c.method}", leave=False)

        def explain_all() -> list[Any]:
            out = []
            for b, t in zip(r.batches, self.targets()):
                out.append(explain_batch(c.method, params, mm, mcard, b, target=t, seed=r.seed,
                                         post=r.suite.postprocess, cache=r.cache,
                                         model_key=r.keys[c.method_model]["sha256"]))
                bar.update(1)
            return out

        expls = self.counted("explain", "", explain_all)
        bar.close()
        for metric in r.plan.metrics("explanation"):
            self.counted("score", metric, lambda: self.score_metric(metric, expls, params, mm, mcard))
        self.save_examples(expls)
        self.write()

    def score_metric(self, metric: str, expls: list[Any], params: Any, mm: Any, mcard: Any) -> None:
        from bench.explain import explain_batch

        entry = METRICS.get(metric)
        c, r = self.cell, self.r
        bar = r.bar(total=len(r.batches), desc=f"score {c.model}/{c.method}/{metric}", leave=False)
        for i, (b, e, t) in enumerate(zip(r.batches, expls, self.targets())):
            def explain_fn(model: Any, x: torch.Tensor, _b: Any = b, _t: Any = t) -> torch.Tensor:
                return explain_batch(c.method, params, model, mcard, dataclasses.replace(_b, x=x),
                                     target=_t, seed=r.seed, post=r.suite.postprocess).maps

            views = [(None, e.maps, e.degenerate)]
            if entry.meta.get("per_timestep") and e.steps is not None:
                views += [(s, e.steps[s], e.steps_degenerate[s]) for s in range(e.steps.shape[0])]
            for step, maps, deg in views:
                inp = self.score_input(entry, b, maps, deg, mm, explain_fn)
                self.add_rows(metric, i, entry.obj(inp, r.suite.metrics[metric]), step, deg)
            bar.update(1)
        bar.close()

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
            explain_fn=explain_fn if "explainer" in needs else None)

    # -- model-scope cells ----------------------------------------------------------------
    def run_model_scope(self) -> None:
        r = self.r
        size = int(r.batches[0].x.shape[-1])
        for metric in r.plan.metrics("model"):
            entry = METRICS.get(metric)

            def score_all() -> None:
                for i, b in enumerate(r.batches):
                    # model-scope metrics read no maps; they get all-zero maps of the right shape
                    maps = torch.zeros(len(b), size, size, device=b.x.device)
                    inp = self.score_input(entry, b, maps, None, None, None)
                    self.add_rows(metric, i, entry.obj(inp, r.suite.metrics[metric]), None, None)

            self.counted("score", metric, score_all)
        self.layer = ""
        self.write()

    # -- rows, examples, writing -------------------------------------------------------------
    def add_rows(self, metric: str, i: int, scores: Any, step: int | None,
                 deg: torch.Tensor | None) -> None:
        """Rows of one metric call on batch i: the per-sample values, plus curve points."""
        b, B = self.r.batches[i], len(self.r.batches[i])
        values = scores.values.detach().double().cpu().reshape(-1).numpy()
        if values.shape[0] != B:
            raise RuntimeError(f"metric {metric!r} returned {values.shape[0]} values for {B} samples")
        base = {"sample_id": b.sample_id.cpu().numpy(), "target": self.targets()[i].cpu().numpy(),
                "pred": self.preds[i].cpu().numpy(), "metric": metric,
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
        rundir.write_examples(self.r.out / "examples" / self.cell.model / f"{self.cell.method}.npz", arrays)

    def write(self) -> None:
        c, r = self.cell, self.r
        rows = pd.concat(self.frames, ignore_index=True) if self.frames else pd.DataFrame()
        if len(rows):
            rows = rows.assign(run_id=r.plan.run_id, dataset=r.suite.data.dataset,
                               split=r.suite.data.split, model=c.model, method=c.method,
                               method_model=c.method_model, layer=self.layer)
        meta = {**dataclasses.asdict(c), "layer": self.layer, "cost": self.cost}
        rundir.write_cell(r.out, c.model, c.method, rows, meta)
