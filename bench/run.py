"""The pipeline: one readable loop from a suite to results.csv, run.json and the report.

For the suite's dataset, each probed model and each method (a *cell*, see :mod:`bench.plan`):
explain every sample once (heatmap cache), then every metric scores those maps (per-time-step
metrics also each step's maps); model-scope metrics run once per model. Each finished cell is
written atomically (:mod:`bench.rundir`), so an interrupted run resumes where it stopped, and
``--shard i/n`` runs every n-th batch of samples (``snnxai merge`` combines the shards).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from bench import rundir
from bench.errors import BenchError
from bench.plan import Cell, Plan, make_plan
from bench.registry import METHODS, METRICS
from bench.seeding import seed_everything


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based): the batches j with ``j % count == index - 1``."""

    index: int = 1
    count: int = 1


def parse_shard(text: str | None) -> Shard:
    if not text:
        return Shard()
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise BenchError(f"--shard expects i/n with integers, e.g. 1/4; got {text!r}") from None
    if not 1 <= i <= n:
        raise BenchError(f"--shard {text}: need 1 <= i <= n")
    return Shard(i, n)


def shard_batches(n: int, batch_size: int, shard: Shard) -> list[list[int]]:
    """Positions ``0..n-1`` of this shard, as batches. Whole batches go to a shard, so a
    sample has the same batch neighbours (hence the same numerics) sharded or not."""
    starts = range(0, n, batch_size)
    return [list(range(s, min(s + batch_size, n))) for j, s in enumerate(starts)
            if j % shard.count == shard.index - 1]


def cache_root(suite: Any) -> Path:
    """The cache folder shared with the checkpoint cache: ``run.cache_dir``, else
    ``$SNNXAI_CACHE``, else the user cache (see :func:`bench.models.cache.cache_dir`)."""
    from bench.models.cache import cache_dir

    return cache_dir(suite.run.cache_dir or None)


class Runner:
    """One run invocation: the plan, loaded batches and models, stage timers, progress bars."""

    def __init__(self, plan: Plan, out: Path, shard: Shard, progress: bool):
        from bench.heatcache import HeatmapCache

        self.plan, self.out, self.shard, self.progress = plan, out, shard, progress
        self.suite = plan.suite
        self.seed, self.device = self.suite.run.seed, self.suite.run.device
        self.cache = HeatmapCache(cache_root(self.suite) / "heatmaps")
        self.times: dict[str, float] = {}
        self.models: dict[str, torch.nn.Module] = {}
        self.keys: dict[str, dict] = {}

    def timed(self, stage: str, t0: float) -> float:
        dt = time.perf_counter() - t0
        self.times[stage] = self.times.get(stage, 0.0) + dt
        return dt

    def bar(self, **kw: Any) -> tqdm:
        return tqdm(disable=not self.progress, file=sys.stderr, dynamic_ncols=True, **kw)

    # -- data and models ------------------------------------------------------------------
    def load_data(self) -> None:
        """This shard's batches on the device (and the gallery's input examples)."""
        from bench.data.base import denormalize, load_batch

        t0 = time.perf_counter()
        ds = self.plan.dataset
        self.batch_pos = shard_batches(len(self.plan.positions), self.suite.run.batch_size, self.shard)
        self.batches = [load_batch(ds, [self.plan.positions[p] for p in b]).to(self.device)
                        for b in self.bar(iterable=self.batch_pos, desc="load data", leave=False)]
        self.positions = np.array([p for b in self.batch_pos for p in b], dtype=np.int64)
        self.sample_ids = [int(s) for b in self.batches for s in b.sample_id.tolist()]
        sel = self.example_rows()
        if len(sel):
            x = torch.cat([b.x for b in self.batches]).cpu()[sel]
            arrays = {"position": self.positions[sel], "sample_id": np.array(self.sample_ids)[sel],
                      "image": denormalize(x, ds.mean, ds.std).clamp(0, 1).numpy().astype(np.float16),
                      "label": torch.cat([b.y for b in self.batches]).cpu().numpy()[sel]}
            if all(b.mask is not None for b in self.batches):
                arrays["mask"] = torch.cat([b.mask for b in self.batches]).cpu().numpy()[sel]
            self.example_inputs = arrays
        self.timed("data", t0)

    def example_rows(self) -> np.ndarray:
        """Rows (of this shard's concatenated batches) whose position is among the first k."""
        return np.flatnonzero(self.positions < self.suite.run.examples)

    def model(self, name: str) -> torch.nn.Module:
        if name not in self.models:
            from bench.models import load_model
            from bench.provenance import sha256_state_dict

            t0 = time.perf_counter()
            self.models[name] = load_model(name, device=self.device, train_if_missing=True,
                                           progress=self.progress)
            self.keys[name] = checkpoint_info(name, self.models[name], sha256_state_dict)
            self.timed("models", t0)
        return self.models[name]

    def predictions(self, name: str) -> list[torch.Tensor]:
        """The probed model's prediction per batch; records cells/<model>/model.json."""
        model = self.model(name)
        t0 = time.perf_counter()
        with torch.no_grad():
            preds = [model(b.x, sample_id=b.sample_id, seed=self.seed).argmax(1) for b in self.batches]
        self.timed("predict", t0)
        rec = {"model": name, "n": len(self.sample_ids), **self.keys[name],
               "n_correct": sum(int((p == b.y).sum()) for p, b in zip(preds, self.batches))}
        rundir.write_atomic(self.out / "cells" / name / "model.json", rundir.dump_json(rec))
        return preds

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        todo = [c for c in self.plan.cells if not rundir.cell_done(self.out, c.model, c.method)]
        if len(todo) < len(self.plan.cells):
            tqdm.write(f"resuming: {len(self.plan.cells) - len(todo)} of {len(self.plan.cells)} "
                       "cells already done", file=sys.stderr)
        overall = self.bar(total=len(todo), desc="cells")
        for model in self.suite.models:
            cells = [c for c in todo if c.model == model]
            if not cells:
                continue
            preds = self.predictions(model)
            for cell in cells:
                overall.set_postfix_str(f"{cell.model}/{cell.method or '(model scope)'}")
                CellRun(self, cell, preds).run()
                overall.update(1)
        overall.close()


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


def checkpoint_info(name: str, model: torch.nn.Module, fallback: Any) -> dict[str, Any]:
    """Checkpoint provenance from the model package if it offers it, else a state-dict hash."""
    import bench.models as models

    fn = getattr(models, "checkpoint_info", None)
    if fn is not None:
        return {"source": "checkpoint", **dict(fn(name))}
    return {"sha256": fallback(model), "path": None, "source": "state_dict"}


# -- entry points -----------------------------------------------------------------------------
def default_out(plan: Plan, shard: Shard) -> Path:
    base = f"runs/{plan.run_id}"
    return Path(base if shard.count == 1 else f"{base}-shard{shard.index}of{shard.count}")


def run_suite(suite: Any, out: str | Path | None = None, shard: Shard = Shard(), force: bool = False,
              progress: bool = True, report: bool = True, command: str = "") -> Path:
    """Run ``suite`` (a :class:`bench.suite.Suite`) into ``out``; returns the run directory.

    Everything the user can get wrong is checked (by :func:`make_plan` and the data loading)
    before the first file is written.
    """
    t_start = time.perf_counter()
    seed_everything(suite.run.seed)
    plan = make_plan(suite)
    out_dir = Path(out) if out else default_out(plan, shard)
    runner = Runner(plan, out_dir, shard, progress)
    runner.load_data()
    manifest = plan.manifest(shard, command, runner.sample_ids, runner.positions.tolist())
    rundir.check_manifest(out_dir, manifest, force)
    if force:
        clear_outputs(out_dir)
    rundir.write_atomic(out_dir / "manifest.json", rundir.dump_json(manifest))
    if getattr(runner, "example_inputs", None):
        rundir.write_examples(out_dir / "examples" / "inputs.npz", runner.example_inputs)
    runner.run()
    t0 = time.perf_counter()
    rundir.assemble([out_dir], out_dir)
    runner.timed("assemble", t0)
    if report and shard.count == 1:
        from bench.report import build_report

        t0 = time.perf_counter()
        build_report(out_dir)
        runner.timed("report", t0)
    finalize_timing(out_dir, runner.times, time.perf_counter() - t_start)
    if progress:
        from bench.report.summary import summary

        print(summary(out_dir), file=sys.stderr)
    return out_dir


def finalize_timing(out_dir: Path, times: dict[str, float], wall: float) -> None:
    """Add this invocation's wall time and per-stage times to run.json."""
    run = rundir.read_json(out_dir / "run.json")
    run["timing"] = {"wall_s": round(wall, 3), "stages_s": {k: round(v, 3) for k, v in times.items()}}
    rundir.write_atomic(out_dir / "run.json", rundir.dump_json(run))


def clear_outputs(out_dir: Path) -> None:
    """--force: drop what a previous run wrote here (only the files a run writes)."""
    for sub in ("cells", "examples", "report"):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
    for name in ("results.csv", "run.json", "manifest.json"):
        (out_dir / name).unlink(missing_ok=True)


def merge_runs(run_dirs: list[str | Path], out: str | Path, report: bool = True) -> Path:
    """Combine the shard directories of one run into ``out`` (results.csv identical to the
    unsharded run's)."""
    dirs = [Path(d) for d in run_dirs]
    for d in dirs:
        if not (d / "manifest.json").is_file():
            raise BenchError(f"{d} is not a run directory (no manifest.json)")
    out_dir = Path(out)
    if out_dir.resolve() in {d.resolve() for d in dirs}:
        raise BenchError("--out must differ from the shard directories")
    rundir.assemble(dirs, out_dir)
    if report:
        from bench.report import build_report

        build_report(out_dir)
    return out_dir
