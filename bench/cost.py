"""Count the compute a method spends: forward calls, forwarded samples and backward passes.

``count_passes(*models)`` hooks the top-level modules only for the duration of a ``with`` block
(the hooks are removed on exit, also on error). A backward pass is counted when a gradient
reaches a model's output, so ``torch.autograd.grad`` (captum) and ``.backward()`` both count,
once per call. The runner reports these per method next to wall time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@dataclasses.dataclass
class PassCount:
    """Totals over the counted models. samples: the batch sizes summed over forward calls
    (an integrated-gradients call with 32 steps on 4 images forwards 128 samples)."""

    forwards: int = 0
    samples: int = 0
    backwards: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _batch_size(args: tuple, kwargs: dict) -> int:
    x = args[0] if args else kwargs.get("x")
    return int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() > 0 else 1


@contextmanager
def count_passes(*models: nn.Module) -> Iterator[PassCount]:
    """Yield a :class:`PassCount` updated live while ``models`` run inside the block."""
    count = PassCount()

    def on_backward(grad: torch.Tensor) -> None:
        count.backwards += 1

    def on_forward(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        count.forwards += 1
        count.samples += _batch_size(args, kwargs)
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(on_backward)

    handles = [m.register_forward_hook(on_forward, with_kwargs=True) for m in models]
    try:
        yield count
    finally:
        for h in handles:
            h.remove()
