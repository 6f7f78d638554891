"""An snnTorch convolutional SNN as a user writes it (the snnTorch tutorials' style), for
``snnxai run smoke --model examples/snntorch_net.py:build --adapter snntorch``.

``forward(x_seq [T, B, 3, 32, 32]) -> (spikes [T, B, 10], membrane [T, B, 10])`` runs its own
time loop with explicit membrane state (``init_leaky``); ``build_hidden()`` is the same network
in the ``init_hidden=True`` style, called once per step (``call = "step"``).
"""

from __future__ import annotations

import snntorch as snn
import torch
from torch import nn


class ConvSNN(nn.Module):
    """conv(3->8) LIF pool conv(8->16) LIF pool fc(16*8*8 -> 10) LIF; beta 0.9, threshold 1."""

    def __init__(self, beta: float = 0.9, classes: int = 10, in_size: int = 32):
        super().__init__()
        self.conv1, self.lif1 = nn.Conv2d(3, 8, 3, padding=1), snn.Leaky(beta=beta)
        self.conv2, self.lif2 = nn.Conv2d(8, 16, 3, padding=1), snn.Leaky(beta=beta)
        self.fc, self.lif3 = nn.Linear(16 * (in_size // 4) ** 2, classes), snn.Leaky(beta=beta)

    def forward(self, x_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mem1, mem2, mem3 = self.lif1.init_leaky(), self.lif2.init_leaky(), self.lif3.init_leaky()
        spikes, mems = [], []
        for x in x_seq:  # one time step: [B, 3, H, W]
            spk1, mem1 = self.lif1(self.conv1(x), mem1)
            spk2, mem2 = self.lif2(self.conv2(nn.functional.avg_pool2d(spk1, 2)), mem2)
            spk3, mem3 = self.lif3(self.fc(nn.functional.avg_pool2d(spk2, 2).flatten(1)), mem3)
            spikes.append(spk3)
            mems.append(mem3)
        return torch.stack(spikes), torch.stack(mems)


class HiddenConvSNN(nn.Module):
    """The same layers with ``init_hidden=True``: ``forward(x [B, 3, H, W]) -> membrane [B, 10]`` for one step."""

    def __init__(self, beta: float = 0.9, classes: int = 10, in_size: int = 32):
        super().__init__()
        self.conv1, self.lif1 = nn.Conv2d(3, 8, 3, padding=1), snn.Leaky(beta=beta, init_hidden=True)
        self.conv2, self.lif2 = nn.Conv2d(8, 16, 3, padding=1), snn.Leaky(beta=beta, init_hidden=True)
        self.fc = nn.Linear(16 * (in_size // 4) ** 2, classes)
        self.lif3 = snn.Leaky(beta=beta, init_hidden=True, output=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.lif1(self.conv1(x))
        s2 = self.lif2(self.conv2(nn.functional.avg_pool2d(s1, 2)))
        _, mem3 = self.lif3(self.fc(nn.functional.avg_pool2d(s2, 2).flatten(1)))
        return mem3


def build() -> ConvSNN:
    torch.manual_seed(0)
    return ConvSNN()


def build_hidden() -> HiddenConvSNN:
    torch.manual_seed(0)
    return HiddenConvSNN()
