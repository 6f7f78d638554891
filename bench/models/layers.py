"""Time-folded building blocks: batch norm over time, spiking and ReLU activations.

Inside a model, time is folded into the batch: a layer sees ``[T*B, C, H, W]`` (or ``[T*B, F]``),
row ``t*B + b`` holding time step t of sample b. Activations are the recordable layers: a
forward hook on them sees the layer's output (spikes, or post-ReLU activations for an ANN).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BenchError
from bench.models.card import NeuronParams
from bench.models.neurons import lif_multistep


class TimeBatchNorm(nn.Module):
    """BatchNorm over a time-folded batch ``[T*B, C, ...]``.

    mode "bntt": one BatchNorm per time step with a scale but no bias (Kim & Panda's BNTT:
    the paper removes the bias so a neuron cannot fire without input). mode "shared": one
    standard BatchNorm (with bias) over all steps. ``dims`` 1 (fc features) or 2 (conv maps).
    """

    def __init__(self, mode: str, channels: int, T: int, dims: int = 2):
        super().__init__()
        bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
        self.mode, self.T = mode, T
        if mode == "bntt":
            self.steps = nn.ModuleList(bn(channels, eps=1e-4) for _ in range(T))
            for b in self.steps:
                b.bias = None  # BNTT has no bias (paper)
        elif mode == "shared":
            self.norm = bn(channels)
        else:
            raise BenchError(f"unknown batch-norm mode {mode!r} (known: bntt, shared)")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.mode == "shared":
            return self.norm(z)
        zt = z.view(self.T, -1, *z.shape[1:]).unbind(0)
        return torch.cat([bn(z_t) for z_t, bn in zip(zt, self.steps)])

    def folded(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode affine ``(scale [C], shift [C])`` of step t (for BN folding in conversion)."""
        bn = self.norm if self.mode == "shared" else self.steps[t]
        scale = bn.running_var.add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        return scale, shift


class Spiking(nn.Module):
    """Multi-step LIF layer: ``[T*B, ...]`` currents -> ``[T*B, ...]`` spikes (pure; no state kept)."""

    spiking = True

    def __init__(self, T: int, neuron: NeuronParams):
        super().__init__()
        self.T, self.neuron = T, neuron

    def dynamics(self, z: torch.Tensor, return_mem: bool = False):
        """``[T*B, ...]`` -> spikes ``[T, B, ...]`` (and pre-reset membrane ``[T, B, ...]``)."""
        n = self.neuron
        return lif_multistep(z.view(self.T, -1, *z.shape[1:]), n.leak, n.threshold, n.reset,
                             n.surrogate, n.surrogate_scale, return_mem=return_mem, init=n.init_mem,
                             order=n.order)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.dynamics(z).flatten(0, 1)

    def extra_repr(self) -> str:
        return f"T={self.T}, {self.neuron}"


class Relu(nn.Module):
    """The ANN twin's activation (T = 1), recordable like :class:`Spiking`."""

    spiking = False
    T = 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z)
