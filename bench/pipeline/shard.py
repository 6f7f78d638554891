"""Which samples this invocation runs (``--shard i/n``), loaded once onto the device.

A run's samples are cut into batches of ``run.batch_size`` in position order; shard ``i`` of
``n`` takes every n-th whole batch, so a sample has the same batch neighbours (hence the same
numerics) sharded or not, and ``snnxai merge`` reassembles the unsharded table.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from bench.data.base import Batch, denormalize, load_batch
from bench.errors import BenchError
from bench.pipeline.plan import Plan
from bench.pipeline.runtime import Clock, Progress


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


@dataclasses.dataclass(frozen=True, eq=False)
class ShardData:
    """This shard's samples, on the run's device.

    batches: the batches in order (``x [B, C, H, W]`` normalized, labels, ids, masks).
    batch_pos: each batch's run positions (index into the plan's samples), same order.
    positions: ``[N]`` int64, the positions of the concatenated batches.
    sample_ids: the N dataset sample ids, same order.
    example_rows: rows of the concatenated batches saved for the gallery (position < examples).
    example_inputs: their images and labels for ``examples/inputs.npz`` (None: no such row), with
        ``mask`` ``[n, H, W]`` and ``step_mask`` ``[n, T, H, W]`` when the data has them.
    """

    batches: tuple[Batch, ...]
    batch_pos: tuple[tuple[int, ...], ...]
    positions: np.ndarray
    sample_ids: tuple[int, ...]
    example_rows: np.ndarray
    example_inputs: dict[str, np.ndarray] | None


def load_shard(plan: Plan, shard: Shard, clock: Clock, progress: Progress) -> ShardData:
    """Load this shard's batches onto the suite's device (timed as stage "data")."""
    with clock.stage("data"):
        ds, run = plan.dataset, plan.run
        batch_pos = shard_batches(len(plan.positions), run.batch_size, shard)
        batches = [load_batch(ds, [plan.positions[p] for p in b]).to(run.device)
                   for b in progress.bar(iterable=batch_pos, desc="load data", leave=False)]
        positions = np.array([p for b in batch_pos for p in b], dtype=np.int64)
        sample_ids = [int(s) for b in batches for s in b.sample_id.tolist()]
        sel = np.flatnonzero(positions < run.examples)
        inputs = None
        if len(sel):
            x = torch.cat([b.x for b in batches]).cpu()[sel]
            inputs = {"position": positions[sel], "sample_id": np.array(sample_ids)[sel],
                      "image": denormalize(x, ds.mean, ds.std).clamp(0, 1).numpy().astype(np.float16),
                      "label": torch.cat([b.y for b in batches]).cpu().numpy()[sel]}
            if all(b.mask is not None for b in batches):
                inputs["mask"] = torch.cat([b.mask for b in batches]).cpu().numpy()[sel]
            if all(b.step_mask is not None for b in batches):  # [n, T, H, W]: the report's filmstrips
                inputs["step_mask"] = torch.cat([b.step_mask for b in batches]).cpu().numpy()[sel]
    return ShardData(batches=tuple(batches), batch_pos=tuple(tuple(b) for b in batch_pos),
                     positions=positions, sample_ids=tuple(sample_ids), example_rows=sel,
                     example_inputs=inputs)
