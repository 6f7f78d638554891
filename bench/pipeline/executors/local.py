"""The local executor: every cell in this process, one after another, grouped by probed model
(:func:`bench.pipeline.cells.run_cells`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.pipeline.plan import Plan
    from bench.pipeline.runtime import Clock, Progress
    from bench.pipeline.shard import ShardData


class LocalExecutor:
    """Runs the cells in this process (``snnxai run --executor local``, the default)."""

    def run_cells(self, plan: Plan, data: ShardData, out: Path, clock: Clock, bars: Progress) -> None:
        from bench.pipeline.cells import run_cells

        run_cells(plan, data, out, clock, bars)
