"""How a run's cells are placed: one choice in the runner (``snnxai run --executor``).

An executor computes every planned cell that is not yet written in the run directory and
writes each one there atomically; the runner then assembles the directory. What a cell
computes and writes is :func:`bench.cell.run_cell`'s business under every executor, so the
assembled results.csv is the same bytes whichever executor ran it.

- ``local`` (:class:`~bench.executors.local.LocalExecutor`): today's loop, in this process.
- ``ray`` (:class:`~bench.executors.ray_executor.RayExecutor`): each cell a Ray task with
  declared CPU/GPU resources, retried when its worker dies; the driver writes what it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.plan import Plan
    from bench.runtime import Clock, Progress
    from bench.shard import ShardData

#: ``--executor`` choices (the first is the default).
EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs the unfinished cells of ``plan`` on ``data`` into the run directory ``out``."""

    def run_cells(self, plan: Plan, data: ShardData, out: Path, clock: Clock, bars: Progress) -> None: ...


def make_executor(name: str, address: str | None = None, cpus_per_cell: float = 1.0,
                  max_retries: int = 3) -> Executor:
    """The executor called ``name`` (see :data:`EXECUTORS`). ``address``: the Ray cluster
    (``auto``, ``HOST:PORT``; None starts a local Ray instance); ray options only."""
    if name == "local":
        if address is not None:
            raise BenchError("--address needs --executor ray")
        from bench.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        if cpus_per_cell <= 0:
            raise BenchError(f"--cpus-per-cell must be > 0, got {cpus_per_cell}")
        from bench.executors.ray_executor import RayExecutor

        return RayExecutor(address=address, cpus_per_cell=cpus_per_cell, max_retries=max_retries)
    raise BenchError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
