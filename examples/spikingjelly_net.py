"""A SpikingJelly convolutional SNN as a user writes it (the ``activation_based`` tutorials'
style), for ``snnxai run smoke --model examples/spikingjelly_net.py:build --adapter spikingjelly``.

``build()`` is multi-step (``step_mode = "m"``): ``forward(x_seq [T, B, 3, 32, 32]) -> [T, B, 10]``,
each layer called once on the whole sequence (``call = "sequence"``, the default).
``build_single()`` is the same network single-step (``step_mode = "s"``):
``forward(x_t [B, 3, 32, 32]) -> [B, 10]`` for one step, called T times by the adapter
(``--model-param call=step``). Spiking layers (module paths): ``features.1``, ``features.4``.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn


class ConvSNN(nn.Module):
    """conv(3->8) LIF pool conv(8->16) LIF pool fc(16*8*8 -> 10); tau 2, soft reset, ATan surrogate.

    The read-out is the fc layer's output (no neuron after it): the adapter averages it over time.
    """

    def __init__(self, tau: float = 2.0, classes: int = 10, in_size: int = 32, step_mode: str = "m"):
        super().__init__()

        def lif() -> neuron.LIFNode:
            return neuron.LIFNode(tau=tau, v_reset=None, surrogate_function=surrogate.ATan(), detach_reset=True)

        self.features = nn.Sequential(
            layer.Conv2d(3, 8, 3, padding=1), lif(), layer.AvgPool2d(2),
            layer.Conv2d(8, 16, 3, padding=1), lif(), layer.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(layer.Flatten(), layer.Linear(16 * (in_size // 4) ** 2, classes))
        functional.set_step_mode(self, step_mode)  # every SpikingJelly module of the network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build() -> ConvSNN:
    torch.manual_seed(0)
    return ConvSNN(step_mode="m")


def build_single() -> ConvSNN:
    torch.manual_seed(0)
    return ConvSNN(step_mode="s")
