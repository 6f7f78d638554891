"""VGG-family architectures shared by SNNs and their ANN twins.

``vgg11`` is the paper's model (Kim & Panda 2021; reference note): eight 3x3 convolutions
without bias, 64-128-256-256-512-512-512-512, 2x2 average pooling after conv1, conv2, conv4 and
conv6, global average pooling, fc 512->4096 (spiking), fc 4096->classes (non-spiking, summed
over time / T). ``vgg5`` is the CPU default of the same family: 16-32-64-64, pooling after
conv1-conv3, global average pooling, fc 64->classes (about 60k parameters).

An SNN and its ANN twin are the same module with :class:`~bench.models.layers.Spiking` or
:class:`~bench.models.layers.Relu` activations; recordable layers are named ``conv1..convN``,
``fc1..`` identically on both. Convolutions carry a bias only without batch norm (converted SNNs).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from bench.errors import BenchError
from bench.models.card import ModelCard
from bench.models.encoders import SEQUENCE_ENCODINGS, poisson, poisson_signed, sequence_input
from bench.models.layers import Relu, Spiking, TimeBatchNorm


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """Conv widths, 1-based conv indices followed by 2x2 avg pooling, hidden (spiking) fc widths."""

    convs: tuple[int, ...]
    pool_after: tuple[int, ...]
    fc_hidden: tuple[int, ...] = ()


ARCHS: dict[str, ArchSpec] = {
    "vgg11": ArchSpec((64, 128, 256, 256, 512, 512, 512, 512), (1, 2, 4, 6), (4096,)),
    "vgg5": ArchSpec((16, 32, 64, 64), (1, 2, 3)),
}


def sequence_steps(card: ModelCard) -> int:
    """Time steps folded into the channels of the card's input: ``card.T`` for a sequence
    encoding (``frames``/``events``, also on an ANN twin, whose card names the data's T), else 1."""
    return card.T if card.encoding in SEQUENCE_ENCODINGS else 1


class VGG(nn.Module):
    """``model(x [B, C, H, W] normalized, sample_id=None, seed=0) -> logits [B, K]``.

    SNN: the encoded input runs for ``T`` steps folded into the batch; logits are the last fc
    layer's output averaged over time. ANN (T = 1): ``sample_id``/``seed`` are ignored.
    ``input_stats`` (mean, std) is needed only by the plain "poisson" encoding, which codes
    pixel intensities in [0, 1].
    """

    def __init__(self, card: ModelCard, input_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None):
        super().__init__()
        if card.arch not in ARCHS:
            raise BenchError(f"unknown architecture {card.arch!r} (known: {', '.join(sorted(ARCHS))})")
        spec = ARCHS[card.arch]
        self.card = card
        self.T = card.T if card.kind == "snn" else 1
        bias = card.bn == "none"
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        self.acts = nn.ModuleDict()
        self.pool_after = frozenset(spec.pool_after)
        cin = card.in_channels // sequence_steps(card)  # a sequence input: one step's channels
        for i, c in enumerate(spec.convs, 1):
            self.convs.append(nn.Conv2d(cin, c, 3, padding=1, bias=bias))
            self.norms.append(self._norm(c, 2))
            self.acts[f"conv{i}"] = self._act()
            cin = c
        self.fcs, self.fc_norms = nn.ModuleList(), nn.ModuleList()
        for j, h in enumerate(spec.fc_hidden, 1):
            self.fcs.append(nn.Linear(cin, h, bias=bias))
            self.fc_norms.append(self._norm(h, 1))
            self.acts[f"fc{j}"] = self._act()
            cin = h
        self.head = nn.Linear(cin, card.num_classes, bias=bias)
        if card.encoding == "poisson":
            if input_stats is None:
                raise BenchError(f"{card.name}: plain Poisson coding needs the dataset's mean/std")
            self.register_buffer("input_mean", torch.tensor(input_stats[0]).view(-1, 1, 1))
            self.register_buffer("input_std", torch.tensor(input_stats[1]).view(-1, 1, 1))

    def _norm(self, channels: int, dims: int) -> nn.Module:
        if self.card.bn == "none":
            return nn.Identity()
        return TimeBatchNorm(self.card.bn, channels, self.T, dims)

    def _act(self) -> nn.Module:
        return Spiking(self.T, self.card.neuron) if self.card.kind == "snn" else Relu()

    def layer_names(self) -> list[str]:
        """Recordable layers, input to output."""
        return list(self.acts)

    def _first_input(self, x: torch.Tensor, sample_id: torch.Tensor | None, seed: int) -> torch.Tensor:
        """First conv's output ``[T*B, C1, H, W]`` (computed once when the input is time-invariant)."""
        enc, T = self.card.encoding, self.T
        if enc in SEQUENCE_ENCODINGS:
            return self.convs[0](sequence_input(x, sequence_steps(self.card), T))
        if enc in ("direct", "analog"):
            z = self.convs[0](x)
            return z.unsqueeze(0).expand(T, *z.shape).reshape(T * z.shape[0], *z.shape[1:])
        if sample_id is not None:
            sample_id = torch.as_tensor(sample_id).reshape(-1)
        if enc == "poisson_signed":
            s = poisson_signed(x, T, sample_id, seed)
        else:
            s = poisson(x * self.input_std + self.input_mean, T, sample_id, seed)
        return self.convs[0](s.flatten(0, 1))

    def forward(self, x: torch.Tensor, sample_id: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.card.in_channels:
            raise BenchError(f"{self.card.name}: expected input [B, {self.card.in_channels}, H, W], "
                             f"got {list(x.shape)}")
        B = x.shape[0]
        acts = list(self.acts.values())
        h = self._first_input(x, sample_id, seed)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if i > 0:
                h = conv(h)
            h = acts[i](norm(h))
            if i + 1 in self.pool_after:
                h = nn.functional.avg_pool2d(h, 2)
        h = h.mean(dim=(2, 3))  # global average pooling -> [T*B, C]
        for j, (fc, norm) in enumerate(zip(self.fcs, self.fc_norms)):
            h = acts[len(self.convs) + j](norm(fc(h)))
        return self.head(h).view(self.T, B, -1).mean(0)
