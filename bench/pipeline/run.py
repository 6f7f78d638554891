"""The pipeline: one loop from a suite to results.csv, run.json and the report.

:func:`run_suite` reads top to bottom as the stages of a run:

1. **plan** (:func:`bench.pipeline.plan.make_plan`): every name resolved, the cells decided (a *cell* is
   a probed model and a method, or the model-scope metrics of a model), each method's model
   and target layer, each metric's function, params and sample limit; every user error is
   raised here, before a file is written. Then this shard's batches are loaded (:mod:`bench.pipeline.shard`).
2. **explain -> score -> rows**, cell by cell (:func:`run_cells`, :func:`bench.pipeline.cell.run_cell`):
   each cell gets a :class:`~bench.pipeline.cell.CellContext` holding everything it reads, and is
   written atomically, so an interrupted run resumes where it stopped.
3. **assemble** (:func:`bench.store.rundir.assemble`): the cells into results.csv and run.json.
4. **report** (:func:`bench.report.build_report`).

``--shard i/n`` runs every n-th batch of samples; ``snnxai merge`` combines the shards.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from bench.errors import BenchError
from bench.pipeline.cells import run_cells
from bench.pipeline.executors import Executor
from bench.pipeline.plan import CellFilter, Plan, make_plan
from bench.pipeline.runtime import Clock, Progress, check_loadable, require_trained
from bench.pipeline.shard import Shard, load_shard, parse_shard, shard_batches
from bench.seeding import seed_everything
from bench.store import rundir, write_atomic
from bench.suite import Suite

__all__ = ["Shard", "merge_runs", "parse_shard", "run_suite", "shard_batches"]


def run_suite(suite: Suite, out: str | Path | None = None, shard: Shard = Shard(), force: bool = False,
              progress: bool = True, report: bool = True, command: str = "",
              only: CellFilter = CellFilter(), reference: str | Path | None = None,
              executor: Executor | None = None, train_missing: bool = True) -> Path:
    """Run ``suite`` into ``out`` (default ``runs/<run_id>``); returns the run directory.

    ``executor`` (``--executor``): how the cells are placed (default: this process, one after
    another, :func:`run_cells`; :mod:`bench.pipeline.executors`); the results are the same bytes.

    ``only`` (``--only``): compute only the cells it selects (names the suite lacks are added
    to it, see :meth:`CellFilter.include`). ``reference`` (``--reference``): a finished run
    directory; its cells are not recomputed, and the run must be comparable with it
    (:func:`bench.compare.check_compatible`), checked before anything is written.
    ``train_missing=False`` (``snnxai run`` without ``--train-missing``): a model without a
    checkpoint for the suite's training data is a BenchError instead of minutes of training."""
    t_start = time.perf_counter()
    clock, bars = Clock(), Progress(progress)
    seed_everything(suite.run.seed)
    # 1. plan (fails on bad input before anything is written), this shard's data
    suite = only.include(suite) if only else suite
    rundir.check_suite_names(suite)  # names become cells/<model>/<method>: none may leave --out
    plan = make_plan(suite, only)
    n, batch = len(plan.positions), suite.run.batch_size
    if not shard_batches(n, batch, shard):  # whole batches go to a shard: some get none
        raise BenchError(f"shard {shard.index}/{shard.count} gets no samples: {n} samples make "
                         f"{-(-n // batch)} batch(es) of {batch}; use at most {-(-n // batch)} shards")
    ref = None
    if reference is not None:
        from bench import compare

        ref = compare.load_run(reference)
        plan, ref_record = compare.drop_reference_cells(plan, ref)
    out_dir = Path(out) if out else default_out(plan, shard)
    data = load_shard(plan, shard, clock, bars)
    manifest = plan.manifest(shard, command, list(data.sample_ids), data.positions.tolist())
    if ref is not None:
        compare.check_compatible(manifest, ref, "this run")
        manifest["reference"] = ref_record
    if not train_missing:  # after the reference check: an incomparable run is refused for that first
        require_trained(plan)
    rundir.check_manifest(out_dir, manifest, force)
    check_loadable(plan)  # a damaged or hostile checkpoint is refused before the manifest is written
    if force:
        clear_outputs(out_dir)
    write_atomic(out_dir / "manifest.json", rundir.dump_json(manifest))
    if data.example_inputs is not None:
        rundir.write_examples(out_dir / "examples" / "inputs.npz", data.example_inputs)
    # 2. explain -> score -> rows, one cell at a time
    if executor is None:
        run_cells(plan, data, out_dir, clock, bars)
    else:
        executor.run_cells(plan, data, out_dir, clock, bars)
    # 3. assemble the cells into results.csv + run.json
    earlier = earlier_timing(out_dir)   # a resumed run: what its earlier goes cost
    with clock.stage("assemble"):
        rundir.assemble([out_dir], out_dir)
    finalize_timing(out_dir, clock.times, time.perf_counter() - t_start, earlier)  # the report shows it
    # 4. report
    if report and shard.count == 1:
        from bench.report import build_report

        with clock.stage("report"):
            build_report(out_dir)
    finalize_timing(out_dir, clock.times, time.perf_counter() - t_start, earlier)
    if progress:
        from bench.report.summary import summary

        print(summary(out_dir), file=sys.stderr)
    return out_dir


# -- entry points -----------------------------------------------------------------------------
def default_out(plan: Plan, shard: Shard) -> Path:
    base = f"runs/{plan.run_id}"
    return Path(base if shard.count == 1 else f"{base}-shard{shard.index}of{shard.count}")


def earlier_timing(out_dir: Path) -> list[dict]:
    """The invocations an earlier (resumed) run of ``out_dir`` recorded, oldest first ([] if none)."""
    try:
        t = rundir.read_json(out_dir / "run.json").get("timing") or {}
    except (OSError, ValueError, BenchError):
        return []
    if "invocations" in t:
        return list(t["invocations"])
    return [{"wall_s": t["wall_s"], "stages_s": t.get("stages_s", {})}] if "wall_s" in t else []


def finalize_timing(out_dir: Path, times: dict[str, float], wall: float, earlier: list[dict] = ()) -> None:
    """Record the run's wall time and per-stage times in run.json: this invocation's, plus those
    of the ``earlier`` invocations that a resumed run continues (their sum, and each in
    ``invocations``), so a run finished in several goes reports what it cost in total, not the
    seconds its last go took to find every cell done."""
    now = {"wall_s": round(wall, 3), "stages_s": {k: round(v, 3) for k, v in times.items()}}
    run = rundir.read_json(out_dir / "run.json")
    if not earlier:
        run["timing"] = now
    else:
        invs = [*earlier, now]
        stages: dict[str, float] = {}
        for inv in invs:
            for k, v in inv.get("stages_s", {}).items():
                stages[k] = round(stages.get(k, 0.0) + v, 3)
        run["timing"] = {"wall_s": round(sum(i["wall_s"] for i in invs), 3), "stages_s": stages,
                         "invocations": invs}
    write_atomic(out_dir / "run.json", rundir.dump_json(run))


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
