"""Cascading randomization machinery for :mod:`metrics.sanity` (choices documented there).

The weight layers (Conv/Linear) are found in forward order by one hooked forward pass; each
spiking layer (a module carrying ``threshold``/``leak``, or a ``neuron`` dataclass with them)
belongs to the weight layer that runs before it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterator

import torch
from torch import nn

from bench.errors import BenchError
from bench.seeding import sample_generator

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
NEURON_FIELDS = ("threshold", "leak")


def _is_neuron(m: nn.Module) -> bool:
    holder = getattr(m, "neuron", None)
    if dataclasses.is_dataclass(holder) and all(hasattr(holder, f) for f in NEURON_FIELDS):
        return True
    return any(isinstance(getattr(m, f, None), (float, torch.Tensor)) for f in NEURON_FIELDS)


@contextlib.contextmanager
def _record_calls(model: nn.Module, calls: list[str]) -> Iterator[None]:
    """Record the names of weight and neuron modules in the order the forward pass calls them."""
    handles = []
    try:
        for name, m in model.named_modules():
            if isinstance(m, WEIGHT_LAYERS) or _is_neuron(m):
                handles.append(m.register_forward_pre_hook(lambda *_, n=name: calls.append(n)))
        yield
    finally:
        for h in handles:
            h.remove()


def cascade_layers(model: nn.Module, x: torch.Tensor, sample_id: torch.Tensor) -> list[tuple[str, list[str]]]:
    """``[(weight layer, [neuron modules after it]), ...]`` from the output layer down."""
    calls: list[str] = []
    with _record_calls(model, calls), torch.no_grad():
        model(x[:1], sample_id=sample_id[:1])
    modules = dict(model.named_modules())
    groups: list[tuple[str, list[str]]] = []
    for name in dict.fromkeys(calls):  # first call of each module, in forward order
        if isinstance(modules[name], WEIGHT_LAYERS):
            groups.append((name, []))
        elif groups:
            groups[-1][1].append(name)
    if not groups:
        raise BenchError("model_randomization found no Conv/Linear layer to randomize")
    return groups[::-1]


def _redraw(layer: nn.Module, gen: torch.Generator, init: str) -> None:
    fan_in = layer.weight[0].numel()
    for p in (layer.weight, layer.bias):
        if p is None:
            continue
        if init == "default":
            new = (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(fan_in)
        else:
            scale = p.detach().double().std() if p.numel() > 1 else p.detach().double().abs().max()
            new = torch.randn(p.shape, generator=gen, dtype=torch.float64) * scale.cpu()
        p.data.copy_(new.to(p))


def _perturb_neuron(m: nn.Module, gen: torch.Generator) -> None:
    factors = {f: 0.5 + float(torch.rand((), generator=gen)) for f in NEURON_FIELDS}
    holder = getattr(m, "neuron", None)
    if dataclasses.is_dataclass(holder):
        leak = min(1.0, holder.leak * factors["leak"])
        m.neuron = dataclasses.replace(holder, threshold=holder.threshold * factors["threshold"], leak=leak)
        return
    for f in NEURON_FIELDS:
        v = getattr(m, f, None)
        if isinstance(v, torch.Tensor):
            v.data.mul_(factors[f])
            if f == "leak":
                v.data.clamp_(max=1.0)
        elif isinstance(v, float):
            setattr(m, f, min(1.0, v * factors[f]) if f == "leak" else v * factors[f])


def cascade(model: nn.Module, x: torch.Tensor, sample_id: torch.Tensor, *, seed: int,
            weight_init: str = "default", randomize_neurons: bool = False,
            max_stages: int | None = None) -> Iterator[nn.Module]:
    """Yield a copy of ``model`` after each cumulative stage (top layer first): one deepcopy,
    randomized further in place at each stage, so every yielded object is the same module
    (consume each stage before advancing; do not key caches on its identity).

    Stage s's randomness is keyed by ``(seed, s, layer name)``; ``model`` itself is untouched.
    """
    model = copy.deepcopy(model).eval()
    modules = dict(model.named_modules())
    for stage, (layer, neurons) in enumerate(cascade_layers(model, x, sample_id)[:max_stages], 1):
        gen = sample_generator(seed, stage, f"model_randomization/{layer}")
        _redraw(modules[layer], gen, weight_init)
        if randomize_neurons:
            for n in neurons:
                _perturb_neuron(modules[n], gen)
        yield model
