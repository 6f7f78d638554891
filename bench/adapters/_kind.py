"""The record every adapter fills in (:class:`AdapterKind`) and the scalar form of a neuron
parameter: below :mod:`bench.adapters.kinds` (which picks an adapter by name) and the adapters
of the optional libraries (:mod:`bench.adapters.spikingjelly`), which both build one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from bench.adapters.spec import UserModelSpec

ParamValue = float | str | bool


@dataclasses.dataclass(frozen=True)
class AdapterKind:
    """name: the adapter's name. is_neuron: a spiking neuron module of the library (None: the
    user must name the layers). reset: zero one model's state. params: a neuron's parameters
    for the model card. mem: a neuron's membrane potential after a call (None: not readable).
    check: refuses a model the adapter cannot run in the spec's ``call`` style, before it runs."""

    name: str
    is_neuron: Callable[[nn.Module], bool] | None
    reset: Callable[[nn.Module], None]
    params: Callable[[nn.Module], dict[str, ParamValue]]
    mem: Callable[[nn.Module, object], torch.Tensor | None] | None
    check: Callable[[nn.Module, dict[str, nn.Module], UserModelSpec], None] | None = None


def scalar_param(v: object) -> ParamValue | None:
    """A parameter as the card shows it: a float, or "per-neuron [shape]" for a learned tensor."""
    if isinstance(v, torch.Tensor):
        return float(v) if v.numel() == 1 else f"per-neuron {list(v.shape)}"
    if isinstance(v, bool | int | float):
        return float(v) if not isinstance(v, bool) else v
    if isinstance(v, str):
        return v
    return None
