"""Temporal Spike Attribution (TSA-S, TSA-NS): Nguyen, Nauta, Englebienne & Seifert, "Feature
attribution explanations for spiking neural networks", IEEE CogMI 2023 (arXiv:2311.02110); code
github.com/ElisaNguyen/tsa-explanations (``tsa``, ``spike_contribution``, ``sam`` in
``experiments/ExplanationCreation.py``; ``get_weight_contributions`` in the 2022-02 version of
``tsa/ExplanationCreation.py``).

Attribution of input unit i at step t < t_c to class c::

    A(t) = diag(N^0(t)) W~^0 diag(N^1(t)) W~^1 ... diag(N^{L-1}(t)) W~^{L-1} diag(p(t_c))
    N^l_i(t) = beta^(t_c - t) S^l_i(t)                                    (TSA-S)
             + [S^l_i(t) = 0] * (-1 / N_l) beta^(t_c - t)                 (TSA-NS: absent spikes)
    W~ = sign(W) (|W| - min|W|) / (max|W| - min|W|)   ("minmax")  or  W  ("raw")

with every layer at the same step t and N_l the units of layer l. The product is a backward
pass in which each spiking neuron's derivative is replaced by ``N^l(t)`` (no carry across
time) and each weight by ``W~``: exact for fully connected layers and the same linear chain
for convolutions; pooling and batch norm keep their ordinary (linear) backward.

Deviations, both constant per sample: p is the softmax of the model's logits (the reference
reads the output membrane at step t_c - 1), and the chain ends at the logits, undoing a
time-mean readout's 1/T. The input layer N^0 multiplies the input values: spikes give the
reference's score, an analog (direct-coded) input acts as a graded spike, silent where 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Literal

import torch
from torch import nn

from bench.errors import BenchError
from bench.registry import METHODS
from methods._chain import (
    InputTap,
    attach,
    input_map,
    linear_part,
    neuron_leak,
    neuron_modules,
    readout_gain,
    spikes_of,
    to_steps,
    weight_modules,
    with_spikes,
)
from methods._common import run_model
from methods.base import ExplainInput
from methods.postprocess import TimeReduce

Weights = Literal["minmax", "raw", "ones"]
REFERENCE = ("Nguyen et al., IEEE CogMI 2023 (arXiv:2311.02110); "
             "github.com/ElisaNguyen/tsa-explanations experiments/ExplanationCreation.py")


@dataclasses.dataclass(frozen=True)
class TsaParams:
    """weights: "minmax" (normalized weight contributions, 2022-02 reference code) or "raw"
    (the repository's head). beta: membrane decay (None: each layer's neurons; IF 1, the
    input layer takes the first spiking layer's). tc: explained step, steps t < tc are
    attributed (None: T, every step). time_reduce: single-map view (attributions add up)."""

    weights: Literal["minmax", "raw"] = "minmax"
    beta: float | None = None
    tc: int | None = None
    time_reduce: TimeReduce = "sum"

    def __post_init__(self) -> None:
        if self.beta is not None and not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if self.tc is not None and self.tc < 1:
            raise ValueError(f"tc must be >= 1, got {self.tc}")


def weight_contribution(w: torch.Tensor, how: str) -> torch.Tensor:
    """``W~`` of one layer's weights (any shape): see the module doc; "ones" is TSA's SAM."""
    if how == "raw":
        return w
    if how == "ones":
        return torch.ones_like(w)
    if how != "minmax":
        raise ValueError(f"unknown weight contribution {how!r}")
    a = w.abs()
    lo, hi = a.min(), a.max()
    if hi <= lo:  # every |w| equal: the reference divides 0 by 0; the sign is what is left
        return w.sign()
    return w.sign() * (a - lo) / (hi - lo)


def step_decay(T: int, tc: int, beta: float, device: torch.device) -> torch.Tensor:
    """``[T]``: ``beta^(tc - t)`` for t < tc, 0 from tc on."""
    t = torch.arange(T, device=device, dtype=torch.float64)
    return torch.where(t < tc, beta ** (tc - t), torch.zeros_like(t)).float()


def spike_contribution(s: torch.Tensor, decay: torch.Tensor, absent: bool) -> torch.Tensor:
    """``N`` for values ``s [T', B, *units]`` and per-step decays ``[T']`` (same shape as s)."""
    d = decay.view(-1, *([1] * (s.dim() - 1))).to(s.dtype)
    n = d * s
    if absent:
        units = s[0, 0].numel()
        n = n - (s == 0).to(s.dtype) * d / units
    return n


def tsa_attributions(inp: ExplainInput, *, weights: str, absent: bool, beta: float | None,
                     tc: int | None) -> torch.Tensor:
    """TSA's input attributions ``[T, B, *input features]`` for class ``inp.target``."""
    model, T, B = inp.model, int(inp.model.T), inp.x.shape[0]
    tc = T if tc is None else min(tc, T)
    neurons = neuron_modules(model)
    tap = InputTap(T, B)
    if beta is None and not neurons:
        raise BenchError("a network without spiking layers needs beta set explicitly")
    first_beta = beta if beta is not None else neuron_leak(next(iter(neurons.values()))[0])
    steps_seen: dict[str, int] = {}

    def weight_hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        lin = linear_part(module, args[0], weight_contribution(module.weight.detach(), weights), out.shape)
        return out.detach() + (lin - lin.detach())  # value unchanged; backward sees W~

    def neuron_hook(name: str, mode: str, b: float):
        def hook(module: nn.Module, args: tuple, out: object) -> object:
            z, s = args[0], spikes_of(out)
            tap.see_neuron_input(z, mode)
            if mode == "step":
                t = steps_seen.get(name, 0)
                steps_seen[name] = t + 1
                decay = step_decay(T, tc, b, s.device)[t:t + 1]
            else:
                decay = step_decay(T, tc, b, s.device)
            n = spike_contribution(to_steps(s.detach(), mode, T), decay, absent).reshape(s.shape)
            return with_spikes(out, s.detach() + n * (z - z.detach()))  # ds/dz := N(t), no carry
        return hook

    with contextlib.ExitStack() as stack, torch.enable_grad():
        for m in weight_modules(model):
            attach(stack, m.register_forward_pre_hook(tap.pre_hook))
            attach(stack, m.register_forward_hook(weight_hook))
        for name, (m, mode) in neurons.items():
            b = beta if beta is not None else neuron_leak(m)
            attach(stack, m.register_forward_hook(neuron_hook(name, mode, b)))
        logits = run_model(inp)
        p = logits.detach().softmax(1)
        target = inp.target.to(logits.device).view(-1, 1)
        seed = torch.zeros_like(p).scatter_(1, target, p.gather(1, target) * readout_gain(model))
        g = tap.grads(logits, seed)
    u = tap.values()
    return spike_contribution(u, step_decay(T, tc, first_beta, u.device), absent) * g


def _tsa_map(inp: ExplainInput, params: TsaParams, absent: bool) -> torch.Tensor:
    attr = tsa_attributions(inp, weights=params.weights, absent=absent, beta=params.beta, tc=params.tc)
    return input_map(attr.detach(), inp.x)


#: what every method of this module registers with (each adds its summary, reference, params)
_REG = dict(model_kind="snn", temporal=True, needs_grad=True, needs_label=True, version="1")


@METHODS.register(
    summary="TSA-S: spike contributions decayed to t_c, chained through normalized weights (per step)",
    **_REG, reference=REFERENCE, params=TsaParams)
def tsa_s(inp: ExplainInput, params: TsaParams) -> torch.Tensor:
    """Raw input attributions ``[T, B, H, W]`` (channels summed) for ``inp.target``."""
    return _tsa_map(inp, params, absent=False)


@METHODS.register(
    summary="TSA-NS: TSA-S plus a negative term for absent spikes (per step)",
    **_REG, reference=REFERENCE, params=TsaParams)
def tsa_ns(inp: ExplainInput, params: TsaParams) -> torch.Tensor:
    """Raw input attributions ``[T, B, H, W]`` (channels summed) for ``inp.target``."""
    return _tsa_map(inp, params, absent=True)


@dataclasses.dataclass(frozen=True)
class SamTsaParams:
    """TSA's SAM: beta / tc as :class:`TsaParams` (the weights are all ones)."""

    beta: float | None = None
    tc: int | None = None
    time_reduce: TimeReduce = "sum"

    def __post_init__(self) -> None:
        TsaParams(beta=self.beta, tc=self.tc)  # same checks


@METHODS.register(
    summary="TSA repository's SAM: TSA-S with all-ones weight contributions (per step, at the input)",
    **_REG, reference=REFERENCE.replace("ExplanationCreation.py", "ExplanationCreation.py sam()"), params=SamTsaParams)
def sam_tsa(inp: ExplainInput, params: SamTsaParams) -> torch.Tensor:
    """Raw input attributions ``[T, B, H, W]`` (channels summed) for ``inp.target``."""
    attr = tsa_attributions(inp, weights="ones", absent=False, beta=params.beta, tc=params.tc)
    return input_map(attr.detach(), inp.x)
