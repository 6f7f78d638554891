"""Recording a foreign model's spiking layers: forward hooks that stack the per-call outputs
into ``[T, B, ...]``, live only inside a ``with`` block.

A foreign layer is called either once per time step (``x_t [B, ...] -> s_t [B, ...]``: snnTorch)
or once per forward on the whole sequence (``[T, B, ...]``: a multi-step neuron; or time folded
into the batch, ``[T*B, ...]``). The adapter learns which from a probe forward (:class:`LayerMode`).

Gradients (``grad=True``): the recorded ``[T, B, ...]`` tensor must be the one the next layer
consumes, or ``torch.autograd.grad(score, rec.spikes[name])`` cannot reach it. A per-step
layer produces step t's spikes before step t+1 exists, so the recorded tensor is a leaf ``P``
allocated at step 0; at step t the hook writes the spikes into ``P[t]`` (values only) and hands
downstream ``P[t] + (s_t - s_t.detach())``: the value is exactly ``s_t`` (``+ 0``), the
gradient reaches ``P[t]`` (what Grad-CAM reads) and, through the zero term, the layers
upstream (BPTT is unchanged).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from bench.models.record import Recording, grad_sink

#: "step": called T times per forward with [B, ...]; "multi": once with [T, B, ...];
#: "folded": once with [T*B, ...]
LayerMode = Literal["step", "multi", "folded"]

#: a neuron module and its output (tensor or tuple) -> membrane potential [B, ...] or None
MemReader = Callable[[nn.Module, object], "torch.Tensor | None"]


def spikes_of(output: object) -> torch.Tensor:
    """A layer's spike tensor: the output itself, or a tuple's first element (snnTorch's ``(spk, mem)``)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"a spiking layer returned {type(output).__name__}, not a tensor or (spikes, ...) tuple")


def _replace_spikes(output: object, s: torch.Tensor) -> object:
    return s if isinstance(output, torch.Tensor) else (s, *output[1:])  # type: ignore[misc]


@dataclasses.dataclass
class Tap:
    """One layer's recording during one forward (``begin`` starts a forward)."""

    name: str
    T: int
    mode: LayerMode
    rec: Recording
    mem: MemReader | None
    grad: bool
    steps: list[torch.Tensor] = dataclasses.field(default_factory=list)
    mems: list[torch.Tensor] = dataclasses.field(default_factory=list)
    leaf: torch.Tensor | None = None

    def begin(self) -> None:
        self.steps, self.mems, self.leaf = [], [], None

    def hook(self, module: nn.Module, inputs: tuple[object, ...], output: object) -> object:
        s = spikes_of(output)
        if self.mem is not None:
            u = self.mem(module, output)
            if u is not None:
                self.mems.append(u.detach())
        if self.mode == "step":
            return self._step(output, s)
        seq = s.view(self.T, -1, *s.shape[1:]) if self.mode == "folded" else s  # -> [T, B, ...]
        if self.grad and torch.is_grad_enabled():
            self.leaf = seq.detach().clone().requires_grad_()
            self.leaf.register_hook(grad_sink(self.rec, self.name))
            seq = self.leaf + (seq - seq.detach())
        self.rec.spikes[self.name] = self.leaf if self.leaf is not None else seq
        if self.mems:
            m = self.mems[-1]
            self.rec.mem[self.name] = m.view(self.T, -1, *m.shape[1:]) if self.mode == "folded" else m
        return _replace_spikes(output, seq.reshape(s.shape))

    def _step(self, output: object, s: torch.Tensor) -> object:
        t = len(self.steps)
        if t >= self.T:  # more calls than steps: a second forward inside one call; keep the last
            self.begin()
            t = 0
        self.steps.append(s)
        if self.grad and torch.is_grad_enabled():
            if t == 0:
                self.leaf = torch.zeros((self.T, *s.shape), dtype=s.dtype, device=s.device, requires_grad=True)
                self.leaf.register_hook(grad_sink(self.rec, self.name))
            assert self.leaf is not None
            with torch.no_grad():
                self.leaf[t] = s.detach()  # the leaf's values only: nothing saved for backward reads it
            s_out = self.leaf[t] + (s - s.detach())
            out = _replace_spikes(output, s_out)
        else:
            out = output
        if t == self.T - 1:
            self.rec.spikes[self.name] = self.leaf if self.leaf is not None else torch.stack(self.steps)
            if len(self.mems) == self.T:
                self.rec.mem[self.name] = torch.stack(self.mems[-self.T:])
        return out
