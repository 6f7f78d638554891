"""The suite's vgg5 SNN (:class:`bench.models.arch.VGG`, ``bn = "none"``, direct coding) written
again as a user writes it in snnTorch and in SpikingJelly, for the adapter equivalence tests.

Both rewrites name their parameters ``conv1..conv4`` and ``head`` and their spiking layers
``sn1..sn4`` (the suite's ``conv1..conv4``); :func:`copy_weights` loads a VGG's weights into
them. With the neuron settings of :data:`NEURONS` every library computes our dynamics bitwise
(``u_t = leak * v_{t-1} + I_t``, ``s_t = 1[u_t > 1]``, reset detached in the gradient):

* ``"if"`` (leak 1, subtract): snnTorch ``Leaky(beta=1.0)`` (its delayed reset is the same
  dynamics for IF neurons), SpikingJelly ``IFNode(v_reset=None, detach_reset=True)``;
* ``"lif"`` (leak 0.5, reset to zero): snnTorch ``Leaky(beta=0.5, reset_mechanism="zero",
  reset_delay=False)``, SpikingJelly ``LIFNode(tau=2.0, decay_input=False, v_reset=0.0,
  detach_reset=True)`` -- its charge ``v - v / tau + x`` equals ``0.5 * v + x`` exactly for tau 2.

SpikingJelly fires at ``u >= threshold`` where we and snnTorch fire at ``u > threshold``: the two
differ only when a membrane lands exactly on the threshold, which float currents from random
weights do not. Surrogate: atan with alpha 2 in all three (ours: ``atan``, scale 2).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.models.card import ModelCard, NeuronParams

T, SIZE, K = 4, 16, 10
WIDTHS = (16, 32, 64, 64)  # vgg5's convolutions; 2x2 average pooling after conv1..conv3
NEURONS = {
    "if": NeuronParams(leak=1.0, threshold=1.0, reset="subtract", surrogate="atan", surrogate_scale=2.0),
    "lif": NeuronParams(leak=0.5, threshold=1.0, reset="zero", surrogate="atan", surrogate_scale=2.0),
}


def card(neuron: str) -> ModelCard:
    """Our vgg5 SNN on 16x16 shapes, T=4, direct coding, no batch norm (convolutions with bias)."""
    return ModelCard(name=f"vgg5_{neuron}_ref", kind="snn", arch="vgg5", dataset="shapes", num_classes=K,
                     input_size=SIZE, T=T, encoding="direct", neuron=NEURONS[neuron], bn="none",
                     target_layers=("conv3", "conv2", "conv4"))


def copy_weights(vgg: nn.Module, net: nn.Module) -> nn.Module:
    """Load a VGG's weights into a rewrite ``net`` (``convs.i.* -> conv{i+1}.*``, ``head.*``; the
    rewrite's own buffers, e.g. snnTorch's ``beta``, are kept); returns ``net``."""
    state = net.state_dict()
    for key, value in vgg.state_dict().items():
        if key.startswith("convs."):
            _, i, rest = key.split(".", 2)
            state[f"conv{int(i) + 1}.{rest}"] = value.clone()
        elif key.startswith("head."):
            state[key] = value.clone()
    net.load_state_dict(state)
    return net


def _convs(module: nn.Module, conv: type[nn.Module]) -> None:
    cin = 3
    for i, c in enumerate(WIDTHS, 1):
        setattr(module, f"conv{i}", conv(cin, c, 3, padding=1))
        cin = c


class SnnTorchVGG5(nn.Module):
    """snnTorch, explicit time loop: ``forward(x_seq [T, B, 3, H, W]) -> head outputs [T, B, K]``."""

    def __init__(self, neuron: str = "if"):
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        _convs(self, nn.Conv2d)
        p = NEURONS[neuron]
        for i in range(1, 5):
            reset = {"reset_mechanism": "zero", "reset_delay": False} if p.reset == "zero" else {}
            setattr(self, f"sn{i}", snn.Leaky(beta=p.leak, threshold=p.threshold,
                                              spike_grad=surrogate.atan(alpha=p.surrogate_scale), **reset))
        self.head = nn.Linear(WIDTHS[-1], K)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        mems = [getattr(self, f"sn{i}").init_leaky() for i in range(1, 5)]
        out = []
        for x in x_seq:  # one step [B, 3, H, W]
            h = x
            for i in range(1, 5):
                h, mems[i - 1] = getattr(self, f"sn{i}")(getattr(self, f"conv{i}")(h), mems[i - 1])
                if i < 4:
                    h = nn.functional.avg_pool2d(h, 2)
            out.append(self.head(h.mean(dim=(2, 3))))
        return torch.stack(out)


class JellyVGG5(nn.Module):
    """SpikingJelly, either step mode: ``"m"``: ``[T, B, 3, H, W] -> [T, B, K]``; ``"s"``:
    ``[B, 3, H, W] -> [B, K]`` for one step (the adapter's ``call = "step"``)."""

    def __init__(self, neuron: str = "if", step_mode: str = "m"):
        super().__init__()
        from spikingjelly.activation_based import functional, layer, surrogate
        from spikingjelly.activation_based import neuron as sj

        _convs(self, layer.Conv2d)
        p = NEURONS[neuron]
        for i in range(1, 5):
            grad = surrogate.ATan(alpha=p.surrogate_scale)
            if p.leak == 1.0:
                node = sj.IFNode(v_threshold=p.threshold, v_reset=None, surrogate_function=grad, detach_reset=True)
            else:
                node = sj.LIFNode(tau=1.0 / (1.0 - p.leak), decay_input=False, v_threshold=p.threshold,
                                  v_reset=0.0 if p.reset == "zero" else None, surrogate_function=grad,
                                  detach_reset=True)
            setattr(self, f"sn{i}", node)
        self.pool = layer.AvgPool2d(2)
        self.head = layer.Linear(WIDTHS[-1], K)
        functional.set_step_mode(self, step_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(1, 5):
            h = getattr(self, f"sn{i}")(getattr(self, f"conv{i}")(h))
            if i < 4:
                h = self.pool(h)
        return self.head(h.mean(dim=(-2, -1)))


# builders for suite files (``source = "tests/foreign_vgg5.py:jelly_if"``; weights by checkpoint)
def snntorch_if() -> SnnTorchVGG5:
    return SnnTorchVGG5("if")


def jelly_if() -> JellyVGG5:
    return JellyVGG5("if", "m")


def jelly_if_single() -> JellyVGG5:
    return JellyVGG5("if", "s")
