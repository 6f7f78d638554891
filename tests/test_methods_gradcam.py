"""Grad-CAM, computed by hand: standard Grad-CAM on a one-conv ANN, and the paper's SNN Grad-CAM
on a two-layer SNN against a hand-written backpropagation through time."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.models.card import ModelCard, NeuronParams
from bench.models.layers import Relu, Spiking
from bench.registry import METHODS
from methods.base import ExplainInput
from methods.snn_gradcam import gradcam_maps

H = 6


class OneConv(nn.Module):
    """x -> ReLU(conv3x3) ("conv1") -> global average pool -> linear."""

    def __init__(self, C: int = 2, K: int = 3):
        super().__init__()
        torch.manual_seed(4)
        self.card = ModelCard(name="oneconv", kind="ann", arch="x", dataset="x", num_classes=K,
                              input_size=H, in_channels=1, target_layers=("conv1",))
        self.T = 1
        self.conv = nn.Conv2d(1, C, 3, padding=1)
        self.acts = nn.ModuleDict({"conv1": Relu()})
        self.head = nn.Linear(C, K)

    def layer_names(self) -> list[str]:
        return list(self.acts)

    def forward(self, x, sample_id=None, seed=0):
        return self.head(self.acts["conv1"](self.conv(x)).mean((2, 3)))


class TwoLayerSNN(nn.Module):
    """Direct input -> conv1 -> LIF ("conv1") -> conv2 -> LIF ("conv2") -> mean over space
    and time -> linear. No batch norm, so the BPTT can be written out below."""

    def __init__(self, T: int = 6, K: int = 3):
        super().__init__()
        self.neuron = NeuronParams(leak=0.9, threshold=1.0, reset="subtract", surrogate="pwl",
                                   surrogate_scale=0.3)
        self.card = ModelCard(name="two", kind="snn", arch="x", dataset="x", num_classes=K,
                              input_size=H, in_channels=1, T=T, encoding="direct",
                              neuron=self.neuron, bn="none", target_layers=("conv1",))
        self.T = T
        g = torch.Generator().manual_seed(11)
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 3, padding=1)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.randn(3, 1, 3, 3, generator=g) * 0.6)
            self.conv1.bias.copy_(torch.rand(3, generator=g) * 0.5)
            self.conv2.weight.copy_(torch.randn(4, 3, 3, 3, generator=g) * 0.5)
            self.conv2.bias.copy_(torch.rand(4, generator=g) * 0.3)
        self.acts = nn.ModuleDict({"conv1": Spiking(T, self.neuron), "conv2": Spiking(T, self.neuron)})
        self.head = nn.Linear(4, K)

    def layer_names(self) -> list[str]:
        return list(self.acts)

    def forward(self, x, sample_id=None, seed=0):
        B, T = x.shape[0], self.T
        z = self.conv1(x).repeat(T, 1, 1, 1)  # time-major fold: row t*B + b
        s2 = self.acts["conv2"](self.conv2(self.acts["conv1"](z)))
        return self.head(s2.mean((2, 3))).view(T, B, -1).mean(0)


def _inp(model, x, target) -> ExplainInput:
    return ExplainInput(model=model, card=model.card, layer="conv1", x=x, target=target,
                        sample_id=torch.arange(len(x)), seed=0)


def _run(name: str, inp: ExplainInput, **params) -> torch.Tensor:
    entry = METHODS.get(name)
    with torch.enable_grad():
        return entry.obj(inp, entry.make_params(params))


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_on_one_conv_model_by_hand(relu: bool) -> None:
    model = OneConv()
    x = torch.randn(3, 1, H, H)
    target = torch.tensor([0, 2, 1])
    cam = _run("ann_gradcam", _inp(model, x, target), relu=relu)
    with torch.no_grad():
        A = torch.relu(model.conv(x))  # [B, C, H, W]
    for b, c in enumerate(target.tolist()):
        # y_c = sum_k W[c, k] mean_ij A[k, i, j] + b_c  =>  dy_c/dA[k, i, j] = W[c, k] / (H W),
        # so alpha_k (the spatial mean of that gradient) is W[c, k] / (H W).
        alpha = model.head.weight[c].detach() / (H * H)
        want = (alpha[:, None, None] * A[b]).sum(0)
        torch.testing.assert_close(cam[b], want.clamp_min(0) if relu else want)


def test_ann_gradcam_equals_shared_core_on_recorded_gradients() -> None:
    from methods._common import layer_activations_and_grads

    model = OneConv()
    inp = _inp(model, torch.randn(4, 1, H, H), torch.tensor([1, 1, 0, 2]))
    acts, grads = layer_activations_and_grads(inp)
    assert acts.shape == grads.shape == (1, 4, 2, H, H)
    torch.testing.assert_close(_run("ann_gradcam", inp), gradcam_maps(acts, grads)[0])


def hand_bptt(model: TwoLayerSNN, x: torch.Tensor, target: torch.Tensor):
    """Spikes of conv1 and d y_target / d spikes, both ``[T, B, C1, H, W]``, written out:
    LIF ``u_t = leak v_{t-1} + I_t``, ``s_t = 1[u_t > th]``, ``v_t = u_t - th s_t`` (reset
    detached, so dv_t/du_t = 1); surrogate ``ds/du = 0.3 max(0, 1 - |u/th - 1|) / th``."""
    T, n = model.T, model.neuron
    th, leak = n.threshold, n.leak
    with torch.no_grad():
        i1 = model.conv1(x)
        v, s1 = torch.zeros_like(i1), []
        for _ in range(T):
            u = leak * v + i1
            s = (u > th).float()
            v = u - th * s
            s1.append(s)
        v, u2 = 0.0, []
        for t in range(T):
            u = leak * v + model.conv2(s1[t])
            v = u - th * (u > th).float()
            u2.append(u)
        # y_c = head(mean_t mean_ij s2)_c  =>  dy_c / ds2[t, k, i, j] = W[c, k] / (T H W)
        w = model.head.weight[target]  # [B, C2]
        g_s2 = (w[:, :, None, None] / (T * H * H)).expand_as(u2[0])
        g_u_next, g_s1 = torch.zeros_like(u2[0]), [None] * T
        for t in reversed(range(T)):
            surrogate = n.surrogate_scale * torch.clamp(1 - (u2[t] / th - 1).abs(), min=0) / th
            g_u = g_s2 * surrogate + leak * g_u_next  # u_{t+1} = leak (u_t - th s_t) + I_{t+1}
            g_s1[t] = F.conv_transpose2d(g_u, model.conv2.weight, padding=1)  # I2_t = conv2(s1_t)
            g_u_next = g_u
    return torch.stack(s1), torch.stack(g_s1)


@pytest.mark.parametrize("per_step", [False, True])
def test_snn_gradcam_equals_hand_written_bptt(per_step: bool) -> None:
    model = TwoLayerSNN()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 1, H, H, generator=g) * 2
    target = torch.tensor([2, 0, 1])
    maps = _run("snn_gradcam", _inp(model, x, target), per_step_alpha=per_step)
    s1, g1 = hand_bptt(model, x, target)
    assert 0.05 < s1.mean() < 0.95 and g1.abs().sum() > 0  # both layers active, gradient flows
    assert not torch.allclose(g1[0], g1[-1])  # BPTT: gradients differ over time
    alpha = g1.sum((-2, -1)) / (H * H)  # [T, B, C1]  Eq. 2
    if not per_step:
        alpha = alpha.sum(0, keepdim=True)  # Eq. 1: also summed over t
    want = (alpha[..., None, None] * s1).sum(2).clamp_min(0)
    assert maps.shape == (model.T, 3, H, H)
    torch.testing.assert_close(maps, want, rtol=1e-5, atol=1e-6)
    assert want.abs().sum() > 0
