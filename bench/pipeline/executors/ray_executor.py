"""The Ray executor: each unfinished cell is a Ray task, placed and retried by Ray.

A task receives the plan and the shard's batches (put once in Ray's object store), computes its
cell with the same code as the local executor (:func:`compute_cell`: the probed model's
predictions, then :func:`bench.pipeline.cell.run_cell`) into a private temporary directory on the worker,
and returns the files it wrote. The driver writes them into the run directory with
:func:`bench.store.write_atomic`, the cell's ``.json`` record last, so a cell is done exactly when
the local executor would call it done: resuming skips it, whichever executor ran it. Returning
the bytes (rather than writing from the worker) means the run directory need not be on a shared
filesystem; the checkpoint and heatmap caches are per worker machine (a cache miss trains or
explains there, with the same numbers).

Resources: ``num_cpus=cpus_per_cell`` per task, and ``num_gpus=gpus_per_cell`` (default one GPU)
when the suite's device is cuda, so Ray never places two cells on one GPU unless asked. A task
whose worker process dies (killed, out of memory, node lost) is retried up to ``max_retries``
times; an exception raised by the cell itself (a bug, a bad input) is not retried but re-raised
in the driver, after the pending tasks are cancelled.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.pipeline.plan import Cell, Plan
    from bench.pipeline.runtime import Clock, Progress
    from bench.pipeline.shard import ShardData


@dataclasses.dataclass(frozen=True)
class CellFiles:
    """What a cell task returns: the files it wrote (path relative to the run directory, bytes),
    in the order they must be written (the cell's done-marker last), and its stage times."""

    files: tuple[tuple[str, bytes], ...]
    times: dict[str, float]


def compute_cell(plan: Plan, data: ShardData, cell: Cell) -> CellFiles:
    """Run one cell exactly as the local executor does, in a temporary run directory; return its files."""
    from bench.pipeline.cell import run_cell
    from bench.pipeline.cells import cell_context, predictions
    from bench.pipeline.runtime import Clock, ModelLoader, Progress, cache_root
    from bench.seeding import seed_everything
    from bench.store import rundir
    from bench.store.heatcache import HeatmapCache

    seed_everything(plan.run.seed)
    clock, bars = Clock(), Progress(False)
    with tempfile.TemporaryDirectory(prefix="snnxai-cell-") as tmp:
        out = Path(tmp)
        models = ModelLoader(plan, out, clock, bars)
        heatmaps = HeatmapCache(cache_root(plan.run.cache_dir) / "heatmaps")
        heatmaps.optional = True  # as in bench.pipeline.cells.run_cells: an unwritable cache runs uncached
        preds = predictions(models, cell.model, data, out, clock, plan.run.seed)
        run_cell(cell_context(plan, cell, data, preds, models, heatmaps, clock, bars, out))
        marker = rundir.cell_file(out, cell.model, cell.method, ".json")
        paths = sorted((p for p in out.rglob("*") if p.is_file()), key=lambda p: (p == marker, str(p)))
        files = tuple((p.relative_to(out).as_posix(), p.read_bytes()) for p in paths)
    return CellFiles(files=files, times=dict(clock.times))


def import_ray():  # -> the ray module (untyped: ray is an optional dependency)
    try:
        import ray
    except ImportError:
        raise BenchError("--executor ray needs Ray: pip install 'snn-xai-bench[ray]' (or pip install ray)") from None
    return ray


def portable(plan: Plan) -> Plan:
    """The plan as a worker needs it: the cache folder resolved to an absolute path, since a
    worker's working directory and environment need not be the driver's. (The run id and the
    manifest are fixed already; the cache folder is not part of any number.)"""
    from bench.pipeline.runtime import cache_root

    return plan.with_cache_dir(str(cache_root(plan.run.cache_dir).resolve()))


def unimportable_modules(plan: Plan) -> list[ModuleType]:
    """The modules of the user models' classes that a worker cannot import by name (a user's
    ``my_net.py`` loaded from a path, :func:`bench.adapters.source.build_user_module`): Ray must
    pickle them by value, or the worker fails to unpickle the plan."""
    import importlib.machinery

    names = {type(m).__module__ for model, _ in plan.user_models.values() for m in model.modules()}
    mods = [sys.modules[n] for n in sorted(names) if n in sys.modules]
    # PathFinder searches sys.path only (not sys.modules): what a fresh process could import
    return [m for m in mods if importlib.machinery.PathFinder.find_spec(m.__name__.split(".")[0]) is None]


class RayExecutor:
    """Cells as Ray tasks (``snnxai run --executor ray [--address auto|HOST:PORT]``).

    address: the cluster to join (None: the Ray instance this process already started, else a
    new local one). cpus_per_cell / gpus_per_cell: the resources each task declares
    (gpus_per_cell None: 1 when the suite runs on cuda, else 0). max_retries: retries of a task
    whose worker died. task: the function a task runs (tests substitute one that dies once).
    """

    def __init__(self, address: str | None = None, cpus_per_cell: float = 1.0, gpus_per_cell: float | None = None,
                 max_retries: int = 3, task: Callable[[Plan, ShardData, Cell], CellFiles] = compute_cell) -> None:
        self.address, self.cpus, self.gpus = address, cpus_per_cell, gpus_per_cell
        self.max_retries, self.task = max_retries, task

    def run_cells(self, plan: Plan, data: ShardData, out: Path, clock: Clock, bars: Progress) -> None:
        from bench.store import rundir, write_atomic

        todo = [c for c in plan.cells if not rundir.cell_done(out, c.model, c.method)]
        if len(todo) < len(plan.cells):
            bars.write(f"resuming: {len(plan.cells) - len(todo)} of {len(plan.cells)} cells already done")
        if not todo:
            return
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=bars.enabled)
        gpus = self.gpus if self.gpus is not None else (1.0 if plan.run.device == "cuda" else 0.0)
        remote = ray.remote(self.task).options(num_cpus=self.cpus, num_gpus=gpus,
                                               max_retries=self.max_retries, retry_exceptions=False)
        for mod in unimportable_modules(plan):
            ray.cloudpickle.register_pickle_by_value(mod)
        plan_ref, data_ref = ray.put(portable(plan)), ray.put(data)
        pending = {remote.remote(plan_ref, data_ref, c): c for c in todo}
        overall = bars.bar(total=len(todo), desc="cells (ray)")
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ref)
                result: CellFiles = ray.get(ref)   # a cell's own exception is re-raised here
                for rel, blob in result.files:     # the done-marker last (see compute_cell)
                    write_atomic(out / rel, blob)
                for stage, seconds in result.times.items():
                    clock.times[stage] = clock.times.get(stage, 0.0) + seconds
                overall.set_postfix_str(f"{cell.model}/{cell.method or '(model scope)'}")
                overall.update(1)
        finally:
            for ref in pending:
                ray.cancel(ref)
            overall.close()
            if started:
                ray.shutdown()
