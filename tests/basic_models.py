"""Small test models with known weights, gradients or outputs, shared by the test files
(captum's ``tests/helpers/basic_models.py`` style).

Every model follows the suite's calling convention ``model(x, sample_id=None, seed=0) -> logits
[B, K]`` and builds its weights from a fixed seed, so a test can write the expected answer down
from the weights. ``tests/conftest.py`` exposes the common instances as fixtures; test modules
whose module-level helpers need a model import the classes from here (``tests/`` is on
``sys.path`` under pytest's default import mode because it is not a package).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from bench.data.base import Batch
from bench.models.arch import VGG
from bench.models.card import ModelCard, NeuronParams


class PixelLinear(nn.Module):
    """``logits = W flatten(x) (+ b)``: the input gradient of logit ``k`` is ``W[k]`` everywhere.

    ``W [K, C*H*W]`` is ``scale * randn`` and ``b [K]`` is ``randn``, drawn in that order from
    ``torch.Generator().manual_seed(seed)`` (the global RNG is not touched). Ignores the encoding
    arguments, as a deterministic ANN does.
    """

    def __init__(self, shape: tuple[int, int, int], classes: int, seed: int = 0, scale: float = 1.0,
                 bias: bool = True):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.shape = shape
        self.w = nn.Parameter(scale * torch.randn(classes, math.prod(shape), generator=g))
        self.b = nn.Parameter(torch.randn(classes, generator=g)) if bias else None

    def forward(self, x: torch.Tensor, sample_id: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        """``x [B, C, H, W] -> logits [B, K]``."""
        out = x.flatten(1) @ self.w.T
        return out if self.b is None else out + self.b

    def weight(self, k: int) -> torch.Tensor:
        """The gradient of logit ``k`` with respect to the input: ``[C, H, W]``."""
        return self.w[k].detach().view(self.shape)


class ConstantLogits(nn.Module):
    """Fixed logits whatever the input: the input gradient is exactly zero (the extreme of
    gradient masking). ``x [B, ...] -> logits [B, K]``."""

    def __init__(self, logits: tuple[float, ...] = (2.0, 1.0, 0.0)):
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor, sample_id: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        # `0 * x` keeps the output in the autograd graph so that a gradient (of zeros) exists
        return torch.tensor(self.logits).expand(x.shape[0], len(self.logits)) + 0 * x.flatten(1)[:, :1]


class SmallConvNet(nn.Module):
    """``depth`` blocks of conv3x3 (padding 1) + ReLU, a spatial mean, a linear head:
    ``x [B, in_channels, H, W] -> logits [B, classes]``.

    Weights come from PyTorch's default initialisation after ``torch.manual_seed(seed)`` (global
    RNG), layers created in forward order.
    """

    def __init__(self, in_channels: int, width: int, classes: int, depth: int = 1, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv2d(in_channels if i == 0 else width, width, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor, sample_id: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


def make_fire(model: VGG, gain: float) -> VGG:
    """Scale every convolution's weights by ``gain`` in place so that an untrained network's
    layers spike (at PyTorch's default initialisation most membranes stay under threshold)."""
    with torch.no_grad():
        for conv in model.convs:
            conv.weight.mul_(gain)
    return model


# -- a tiny vgg5 pair (SNN and its ANN twin) on 16x16 inputs --------------------------------------
TINY_T, TINY_SIZE, TINY_K = 4, 16, 4


def tiny_card(kind: str) -> ModelCard:
    """The card of ``tiny_snn`` (T=4, signed Poisson input) or of its twin ``tiny_ann``."""
    common = dict(arch="vgg5", dataset="none", num_classes=TINY_K, input_size=TINY_SIZE,
                  target_layers=("conv2", "conv3"), bn="shared")
    if kind == "snn":
        return ModelCard(name="tiny_snn", kind="snn", T=TINY_T, encoding="poisson_signed",
                         neuron=NeuronParams(), twin="tiny_ann", **common)
    return ModelCard(name="tiny_ann", kind="ann", twin="tiny_snn", **common)


@functools.cache
def tiny_vgg(kind: str) -> VGG:
    """A vgg5 on 16x16 inputs (``"snn"`` or ``"ann"``), seed 0, weights x4 so every layer spikes.
    Cached: one instance per kind for the whole session, so tests must leave it unchanged."""
    torch.manual_seed(0)
    return make_fire(VGG(tiny_card(kind)).eval(), 4)


def tiny_batch(n: int = 3) -> Batch:
    """``n`` standard-normal images ``[n, 3, 16, 16]`` (generator seed 1), labels ``arange % K``,
    sample ids 100, 101, ..."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, TINY_SIZE, TINY_SIZE, generator=g)
    return Batch(x=x, y=torch.arange(n) % TINY_K, sample_id=torch.arange(100, 100 + n))


#: A user's snnTorch network file (explicit time loop), written into a temp dir by the adapter
#: and executor tests and loaded with ``--model FILE.py:build``.
SNNTORCH_USER_FILE = """
import snntorch as snn
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.lif1 = nn.Conv2d(3, 4, 3, padding=1), snn.Leaky(beta=0.9, threshold=0.5)
        self.fc, self.lif2 = nn.Linear(4 * 16, 10), snn.Leaky(beta=0.9)

    def forward(self, x_seq):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out = []
        for x in x_seq:
            spk1, mem1 = self.lif1(self.conv1(x), mem1)
            spk2, mem2 = self.lif2(self.fc(nn.functional.adaptive_avg_pool2d(spk1, 4).flatten(1)), mem2)
            out.append(mem2)
        return torch.stack(out)

def build():
    torch.manual_seed(0)
    return Net()

def build_wide():
    net = Net()
    net.fc = nn.Linear(4 * 16, 12)
    return net
"""
