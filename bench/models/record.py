"""Record spikes, membrane potentials and gradients of named layers during a forward pass.

::

    with record(model, ["conv3"], mem=True, grad=True) as rec:
        logits = model(x, sample_id=ids, seed=0)
        logits[range(B), y].sum().backward()
    rec.spikes["conv3"]   # [T, B, C, H, W] (ANN: post-ReLU activations, [1, B, C, H, W])
    rec.mem["conv3"]      # [T, B, C, H, W] pre-reset membrane u_t (SNN only), no gradient
    rec.grad["conv3"]     # [T, B, C, H, W] d(backpropagated quantity) / d spikes

Hooks live only inside the ``with`` block and are removed on exit, exceptions included; the
model keeps no state. Without ``grad`` it works under ``torch.no_grad()``. With ``grad`` the
recorded tensor is the very tensor the next layer consumes, so it is part of the autograd graph
(``torch.autograd.grad(out, rec.spikes[name])`` works too). A layer run twice in one block keeps
its last call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import weakref
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from bench.errors import BenchError, UnknownNameError


@dataclasses.dataclass
class Recording:
    """Per-layer tensors ``[T, B, ...]`` filled during the forward (spikes, mem) and backward (grad)."""

    spikes: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    mem: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    grad: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)


def layer_module(model: nn.Module, name: str) -> nn.Module:
    """The activation module of recordable layer ``name`` (did-you-mean on a typo)."""
    names = model.layer_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise UnknownNameError(f"{model.card.name} has no layer {name!r}{hint} (layers: {', '.join(names)})")
    return model.acts[name]


def grad_sink(rec: Recording, name: str) -> Callable[[torch.Tensor], None]:
    """A tensor hook that stores the gradient in ``rec.grad[name]``, holding ``rec`` weakly.

    The hooked tensor is in the autograd graph, which C++ keeps alive, and ``rec.spikes`` holds
    it: a strong reference from its hook back to ``rec`` closes a cycle that Python's gc cannot
    see, so every recorded batch's whole graph would outlive the call (a leaderboard run grew
    by gigabytes per SNN Grad-CAM cell: about 3 MB per sample and call)."""
    ref = weakref.ref(rec)

    def hook(g: torch.Tensor) -> None:
        r = ref()
        if r is not None:
            r.grad[name] = g

    return hook


def _hook(rec: Recording, name: str, mem: bool, grad: bool):
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        s = output.view(module.T, -1, *output.shape[1:])  # unfold time: [T*B, ...] -> [T, B, ...]
        if grad and torch.is_grad_enabled():
            if not s.requires_grad:  # nothing upstream needs grad: make the spikes a leaf
                s = s.detach().requires_grad_()
            s.register_hook(grad_sink(rec, name))
        rec.spikes[name] = s
        if mem:
            with torch.no_grad():  # the neuron is a pure function of its input: recompute u_t
                rec.mem[name] = module.dynamics(inputs[0], return_mem=True)[1]
        return s.view(output.shape)  # downstream consumes s, so s is in the graph

    return hook


@contextlib.contextmanager
def record(model: nn.Module, layers: str | Sequence[str], *, mem: bool = False,
           grad: bool = False) -> Iterator[Recording]:
    """Context manager yielding a :class:`Recording` of ``layers`` (a name or a list of names)."""
    names = [layers] if isinstance(layers, str) else list(layers)
    if hasattr(model, "recording"):  # an adapted foreign model records itself (bench.adapters)
        with model.recording(names, mem=mem, grad=grad) as rec:
            yield rec
        return
    modules = {n: layer_module(model, n) for n in names}
    if mem and not all(getattr(m, "spiking", False) for m in modules.values()):
        raise BenchError(f"{model.card.name}: membrane potentials exist only for spiking layers")
    rec = Recording()
    handles = []
    try:
        for n, m in modules.items():
            handles.append(m.register_forward_hook(_hook(rec, n, mem, grad)))
        yield rec
    finally:
        for h in handles:
            h.remove()
