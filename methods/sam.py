"""Spike Activation Map (SAM): Kim & Panda, Sci. Rep. 11:19037 (2021), arXiv:2103.14441.

For a spiking layer with binary spikes ``S[t, k, i, j]``, the neuron contribution score
``N[t] = sum over earlier spike times t' of exp(-gamma * (t - t'))`` rewards short inter-spike
intervals, and the map is ``M[t, i, j] = sum_k N[t, k, i, j] * S[t, k, i, j]``: only neurons
spiking *now* contribute, channels are summed, no gradient and no label are used.

Three readings of "earlier": ``exclusive`` (t' < t, the paper's "previous firing times" read
literally), ``inclusive`` (t' <= t) and ``official`` (the paper's released code, GitHub
Intelligent-Computing-Lab-Yale/Visual-Explanations-from-Spiking-Neural-Networks-using-Interspike-Intervals:
inclusive plus ``exp(-gamma * t)`` for every silent step so far, because it computes
``t - S[p] * p`` for every step p). All three use exact O(T) recursions instead of the
reference code's O(T^2) re-summation.

Two more definitions circulate as "SAM" in later work, each named here: ``eventrpg`` (Sun et
al., EventRPG, ICLR 2024, arXiv:2403.09274; github.com/myuansun/EventRPG,
``snn_utils/sew_resnet.py`` and ``snn_utils/VGG_models.py``, ``relprop`` with "SAM"):
``M[t] = sum_k sum_{t' < t} S[t', k] exp(-gamma (t - t'))`` with gamma 0.2 and no
multiplication by the current spike; and TSA's SAM (TSA-S with all-ones weights, a chain to the
input: :func:`methods.tsa.sam_tsa`). Every definition is registered under its own name
(``sam`` = the paper's text, read inclusively), so a leaderboard shows each as a row.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from bench.registry import METHODS
from methods._common import record, require_spatial, run_model
from methods.base import ExplainInput
from methods.postprocess import TimeReduce

Variant = Literal["exclusive", "inclusive", "official", "eventrpg"]
VARIANTS = ("exclusive", "inclusive", "official", "eventrpg")


@dataclasses.dataclass(frozen=True)
class SamParams:
    """gamma: decay of the temporal kernel (the reference code's 0.5). variant: see module doc.
    layer: target layer (None: the model card's default). time_reduce: single-map view."""

    gamma: float = 0.5
    variant: Variant = "inclusive"
    layer: str | None = None
    time_reduce: TimeReduce = "mean"

    def __post_init__(self) -> None:
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")


@torch.no_grad()
def spike_activation_map(spikes: torch.Tensor, gamma: float = 0.5,
                         variant: str = "inclusive") -> torch.Tensor:
    """Binary spikes ``[T, B, C, H, W]`` -> raw SAM maps ``[T, B, H, W]`` (unnormalized).

    Recursions (per neuron): inclusive ``N_t = e^-gamma N_{t-1} + S_t``; exclusive
    ``N_t - S_t``; official ``N_t + n0_t e^(-gamma t)`` with ``n0_t`` the silent steps <= t;
    eventrpg ``R_t = e^-gamma (R_{t-1} + S_{t-1})``, ``R_0 = 0``, not multiplied by ``S_t``.
    """
    if spikes.dim() != 5:
        raise ValueError(f"spikes must be [T, B, C, H, W], got shape {tuple(spikes.shape)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown SAM variant {variant!r}")
    s = spikes.detach().to(torch.float32 if not spikes.is_floating_point() else spikes.dtype)
    # Samples are independent: on the CPU the recursion runs on blocks of samples whose per-step
    # state fits in the cache (the loop is memory-bound: at a batch of 48 on VGG11's conv4, blocks
    # of 16 took 30 ms against 63 ms for the whole batch at once on the 2-core machine). Per
    # element the operations are the same, so the maps are bit-identical to one pass over the batch.
    # A GPU has no such cache to fit: blocks would only add kernel launches.
    block = max(1, BLOCK_BYTES // max(1, math.prod(s.shape[2:]) * s.element_size()))
    if s.shape[1] <= block or s.device.type != "cpu":
        return _sam_block(s, gamma, variant)
    maps = s.new_empty((s.shape[0], s.shape[1], *s.shape[3:]))
    for i in range(0, s.shape[1], block):
        maps[:, i:i + block] = _sam_block(s[:, i:i + block], gamma, variant)
    return maps


#: Bytes of one step's per-block state ``[b, C, H, W]`` (:func:`spike_activation_map`): 4 MiB
#: (16 samples of VGG11's conv4 at 64x64) keeps the three per-step buffers near the cache.
BLOCK_BYTES = 4 * 2**20


def _sam_block(s: torch.Tensor, gamma: float, variant: str) -> torch.Tensor:
    """:func:`spike_activation_map` of float spikes ``[T, b, C, H, W]`` in one pass."""
    decay = math.exp(-gamma)
    if variant == "eventrpg":
        return _eventrpg_block(s, decay)
    # In place into preallocated buffers: the same float operations in the same order as the
    # textbook form ``ncs = decay * ncs + s[t]; maps[t] = (score * s[t]).sum(1)`` (bit-identical
    # maps), without a fresh [B, C, H, W] tensor per operation and step: the loop is memory-bound,
    # and the allocations cost 3x the arithmetic (reports/perf).
    ncs = torch.zeros_like(s[0])
    score = torch.empty_like(s[0])
    silent = torch.zeros_like(s[0]) if variant == "official" else None
    maps = s.new_empty((s.shape[0], s.shape[1], *s.shape[3:]))
    for t in range(s.shape[0]):
        st = s[t]
        ncs.mul_(decay).add_(st)
        if variant == "inclusive":
            torch.mul(ncs, st, out=score)
        elif variant == "exclusive":
            torch.sub(ncs, st, out=score).mul_(st)
        else:
            silent.add_(1 - st)
            torch.mul(silent, math.exp(-gamma * t), out=score).add_(ncs).mul_(st)
        torch.sum(score, dim=1, out=maps[t])
    return maps


def _eventrpg_block(s: torch.Tensor, decay: float) -> torch.Tensor:
    """EventRPG's SAM of float spikes ``[T, b, C, H, W]`` -> ``[T, b, H, W]`` (strictly earlier
    spikes only, so step 0 is all zeros)."""
    acc = torch.zeros_like(s[0])
    maps = s.new_empty((s.shape[0], s.shape[1], *s.shape[3:]))
    for t in range(s.shape[0]):
        torch.sum(acc, dim=1, out=maps[t])
        acc.add_(s[t]).mul_(decay)
    return maps


#: what every SAM definition of this module registers with (each adds its summary, reference, params)
_REG = dict(model_kind="snn", temporal=True, needs_grad=False, needs_label=False, version="1")


@METHODS.register(
    summary="Spike Activation Map: inter-spike-interval weighted spikes of a layer, per time step",
    **_REG,
    reference="Kim & Panda, Sci. Rep. 2021 (arXiv:2103.14441)", params=SamParams,
    compare_with=("ann_gradcam",), attack_gallery=True)
def sam(inp: ExplainInput, params: SamParams) -> torch.Tensor:
    """Raw SAM maps ``[T, B, h, w]`` of ``inp.layer`` for the sample's fixed encoding."""
    with torch.no_grad(), record(inp.model, [inp.layer]) as rec:
        run_model(inp)
        spikes = require_spatial(rec.spikes[inp.layer], inp.layer)
    return spike_activation_map(spikes, params.gamma, params.variant)


def _layer_sam(inp: ExplainInput, gamma: float, variant: str) -> torch.Tensor:
    with torch.no_grad(), record(inp.model, [inp.layer]) as rec:
        run_model(inp)
        spikes = require_spatial(rec.spikes[inp.layer], inp.layer)
    return spike_activation_map(spikes, gamma, variant)


@dataclasses.dataclass(frozen=True)
class SamDefinitionParams:
    """A named SAM definition's parameters: gamma (the kernel's decay), layer (None: the card's
    default), time_reduce (single-map view)."""

    gamma: float = 0.5
    layer: str | None = None
    time_reduce: TimeReduce = "mean"

    def __post_init__(self) -> None:
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")


@dataclasses.dataclass(frozen=True)
class SamEventRpgParams(SamDefinitionParams):
    """EventRPG's SAM: gamma 0.2 as in its code."""

    gamma: float = 0.2


@METHODS.register(
    summary="SAM, exclusive reading: only strictly earlier spikes (t' < t) score a neuron spiking now",
    **_REG,
    reference="Kim & Panda, Sci. Rep. 2021 (arXiv:2103.14441), 'previous firing times' read as t' < t",
    params=SamDefinitionParams)
def sam_exclusive(inp: ExplainInput, params: SamDefinitionParams) -> torch.Tensor:
    """Raw maps ``[T, B, h, w]`` of ``inp.layer``."""
    return _layer_sam(inp, params.gamma, "exclusive")


@METHODS.register(
    summary="SAM as the authors' code computes it: inclusive plus exp(-gamma t) per silent step so far",
    **_REG,
    reference=("Kim & Panda 2021, code github.com/Intelligent-Computing-Lab-Yale/"
               "Visual-Explanations-from-Spiking-Neural-Networks-using-Interspike-Intervals (main.py)"),
    params=SamDefinitionParams)
def sam_official(inp: ExplainInput, params: SamDefinitionParams) -> torch.Tensor:
    """Raw maps ``[T, B, h, w]`` of ``inp.layer``."""
    return _layer_sam(inp, params.gamma, "official")


@METHODS.register(
    summary="EventRPG's SAM: earlier spikes decayed by exp(-0.2 dt), not gated by the current spike",
    **_REG,
    reference=("Sun et al., EventRPG, ICLR 2024 (arXiv:2403.09274); github.com/myuansun/EventRPG "
               "snn_utils/sew_resnet.py relprop('SAM')"),
    params=SamEventRpgParams)
def sam_eventrpg(inp: ExplainInput, params: SamEventRpgParams) -> torch.Tensor:
    """Raw maps ``[T, B, h, w]`` of ``inp.layer``."""
    return _layer_sam(inp, params.gamma, "eventrpg")
