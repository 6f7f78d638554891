"""How a run's cells are placed: one choice in the runner (``snnxai run --executor``).

An executor computes every planned cell that is not yet written in the run directory and
writes each one there atomically; the runner then assembles the directory. What a cell
computes and writes is :func:`bench.pipeline.cell.run_cell`'s business under every executor, so the
assembled results.csv is the same bytes whichever executor ran it.

- ``local`` (:class:`~bench.pipeline.executors.local.LocalExecutor`): today's loop, in this process.
- ``ray`` (:class:`~bench.pipeline.executors.ray_executor.RayExecutor`): each cell a Ray task with
  declared CPU/GPU resources, retried when its worker dies; the driver writes what it returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.pipeline.plan import Plan
    from bench.pipeline.runtime import Clock, Progress
    from bench.pipeline.shard import ShardData

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
        from bench.pipeline.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "ray":
        if cpus_per_cell <= 0:
            raise BenchError(f"--cpus-per-cell must be > 0, got {cpus_per_cell}")
        from bench.pipeline.executors.ray_executor import RayExecutor

        check_address(address)  # before the run writes anything: a bad address leaves no folder
        return RayExecutor(address=address, cpus_per_cell=cpus_per_cell, max_retries=max_retries)
    raise BenchError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")


#: seconds to wait for a Ray head's port to answer (Ray itself retries for minutes, silently)
CONNECT_TIMEOUT_S = 5.0


def check_address(address: str | None) -> None:
    """``--address``: None (start a local Ray), ``auto`` (Ray finds a running cluster), or
    ``[ray://]HOST:PORT`` with a port in 1..65535 that answers within :data:`CONNECT_TIMEOUT_S`
    (a one-line BenchError otherwise, instead of Ray's ValueError or its endless retries)."""
    import socket

    if address is None or address == "auto":
        return
    text = address.strip()
    host, sep, port = text.removeprefix("ray://").rpartition(":")
    if not text or not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise BenchError(f"--address must be auto or HOST:PORT (a port in 1..65535), got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:  # refused, unreachable, unknown host, or no answer in time
        why = "no answer" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise BenchError(f"--address {address}: cannot reach a Ray cluster there ({why} within "
                         f"{CONNECT_TIMEOUT_S:g} s); start one with `ray start --head` or leave --address out") from None
