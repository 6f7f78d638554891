"""The local executor: every cell in this process, one after another, grouped by probed model
(:func:`bench.run.run_cells`, the loop the runner always had)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.plan import Plan
    from bench.runtime import Clock, Progress
    from bench.shard import ShardData


class LocalExecutor:
    """Runs the cells in this process (``snnxai run --executor local``, the default)."""

    def run_cells(self, plan: Plan, data: ShardData, out: Path, clock: Clock, bars: Progress) -> None:
        from bench import run  # the runner's loop; looked up at call time so tests can patch it

        run.run_cells(plan, data, out, clock, bars)
