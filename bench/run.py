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
import torch
from tqdm.auto import tqdm

from bench import rundir
from bench.errors import BenchError
from bench.cellrun import CellRun
from bench.plan import Plan, make_plan
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
        self.example_inputs: dict[str, np.ndarray] | None = None

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

            t0 = time.perf_counter()
            # trained on the suite's dataset (its train split): the zoo for the shipped shapes
            # models, else the checkpoint cache (training on a miss)
            self.models[name] = load_model(name, device=self.device, train_if_missing=True,
                                           progress=self.progress, seed=self.suite.run.model_seed,
                                           cache_dir=self.suite.run.cache_dir or None,
                                           dataset=self.suite.data.dataset,
                                           params=self.suite.data.params or None,
                                           log=lambda msg: tqdm.write(msg, file=sys.stderr))
            self.keys[name] = checkpoint_info(name, self.models[name], self.suite)
            rundir.write_atomic(self.out / "cells" / "_checkpoints" / f"{name}.json",
                                rundir.dump_json({"model": name, **self.keys[name]}))
            self.timed("models", t0)
        return self.models[name]

    def predictions(self, name: str) -> list[torch.Tensor]:
        """The probed model's prediction per batch; records cells/<model>/model.json."""
        model = self.model(name)
        t0 = time.perf_counter()
        with torch.no_grad():
            preds = [model(b.x, sample_id=b.sample_id, seed=self.seed).argmax(1) for b in self.batches]
        self.timed("predict", t0)
        rec = {"model": name, "n": len(self.sample_ids),
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


def checkpoint_info(name: str, model: torch.nn.Module, suite: Any) -> dict[str, Any]:
    """Where the weights came from: the zoo checkpoint file load_model resolves first (its
    sha256 from the verified sidecar), else a sha256 over the loaded state dict."""
    from bench.models.cache import read_meta
    from bench.models.training import data_config
    from bench.models.zoo import zoo_match
    from bench.provenance import sha256_state_dict

    card = model.card if hasattr(model, "card") else None
    if card is not None:
        data = data_config(card, suite.data.dataset, suite.data.params or None)
        path = zoo_match(card, data, suite.run.model_seed)
        if path is not None:
            return {"sha256": read_meta(path)["sha256"], "path": f"bench/zoo/{path.name}", "source": "zoo"}
    return {"sha256": sha256_state_dict(model), "path": None, "source": "state_dict"}


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
    if runner.example_inputs is not None:
        rundir.write_examples(out_dir / "examples" / "inputs.npz", runner.example_inputs)
    runner.run()
    t0 = time.perf_counter()
    rundir.assemble([out_dir], out_dir)
    runner.timed("assemble", t0)
    finalize_timing(out_dir, runner.times, time.perf_counter() - t_start)  # the report shows it
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


def merge_runs(run_dirs: list[str | Path], out: str | Path, report: bool = True,
               compress: bool = False) -> Path:
    """Combine the shard directories of one run into ``out`` (results.csv identical to the
    unsharded run's). One unsharded run directory is "merged" into a clean copy holding only
    results, run.json and the example maps (how results/default is published)."""
    dirs = [Path(d) for d in run_dirs]
    for d in dirs:
        if not (d / "manifest.json").is_file():
            raise BenchError(f"{d} is not a run directory (no manifest.json)")
    out_dir = Path(out)
    if out_dir.resolve() in {d.resolve() for d in dirs}:
        raise BenchError("--out must differ from the shard directories")
    rundir.assemble(dirs, out_dir, merge=True, compress=compress)
    if report:
        from bench.report import build_report

        build_report(out_dir)
    return out_dir
