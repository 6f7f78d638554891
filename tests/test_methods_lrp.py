"""Spiking LRP (SLTRP, SLRP, RelCAM) against literal transcriptions of EventRPG's rules
(github.com/myuansun/EventRPG, snn_utils/layers.py and snn_utils/sew_resnet.py), plus
conservation and the conservation residual."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from basic_models import make_fire, tiny_batch, tiny_card, tiny_vgg

from bench.models.arch import VGG
from methods._conservation import conservation_residual
from methods.base import ExplainInput
from methods.lrp import alpha_beta, contrastive_relevance, membrane_carry, relevance_conservation, relevance_pass


# -- transcriptions --------------------------------------------------------------------------------
def ref_safe_divide(a, b):
    return a / (b + b.eq(0).type(b.type()) * 1e-9) * b.ne(0).type(b.type())


def ref_clrp(x, num_classes, max_index):
    """sew_resnet.py CLRP with x [T, B, K] (sltrp)."""
    R = torch.ones(x.shape)
    R /= -num_classes
    for j in range(R.size(0)):
        for i in range(R.size(1)):
            R[j, i, max_index[i]] += 1
    return R


def ref_linear_relprop(weight, X, R, alpha=1):
    """layers.py Linear.relprop."""
    beta = alpha - 1
    pw = torch.clamp(weight, min=0)
    nw = torch.clamp(weight, max=0)
    px = torch.clamp(X, min=0).requires_grad_()
    nx = torch.clamp(X, max=0).requires_grad_()

    def f(w1, w2, x1, x2):
        Z1 = F.linear(x1, w1)
        Z2 = F.linear(x2, w2)
        Z = Z1 + Z2
        S = ref_safe_divide(R, Z)
        C1 = x1 * torch.autograd.grad(Z1, x1, S, retain_graph=True)[0]
        C2 = x2 * torch.autograd.grad(Z2, x2, S, retain_graph=True)[0]
        return C1 + C2

    activator_relevances = f(pw, nw, px, nx)
    inhibitor_relevances = f(nw, pw, px, nx)
    return alpha * activator_relevances - beta * inhibitor_relevances


def ref_plif_cal_R_new(R, X_pre, X_post, tau):
    """layers.py ParametricLIFNode.relprop cal_R_new, with sigmoid(w) = 1/tau fixed."""
    R_new = torch.zeros_like(R)
    sig = 1.0 / tau
    weight = ref_safe_divide(X_pre * (1 - sig), X_post * sig + X_pre * (1 - sig))
    R_new[-1] = R[-1]
    for i in reversed(range(weight.shape[0])):
        R_new[i] = R_new[i + 1].detach() * weight[i] + R[i]
        R_new[i + 1] = R_new[i + 1].detach() * (1 - weight[i])
    return R_new


# -- rules -----------------------------------------------------------------------------------------
def test_contrastive_relevance_equals_clrp_and_sums_to_zero() -> None:
    target = torch.tensor([2, 0, 3])
    R = contrastive_relevance(target, 5)
    torch.testing.assert_close(R, ref_clrp(torch.zeros(1, 3, 5), 5, target)[0])
    torch.testing.assert_close(R.sum(1), torch.zeros(3), atol=1e-6, rtol=0)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_alpha_beta_equals_eventrpg_linear_relprop(alpha: float) -> None:
    g = torch.Generator().manual_seed(0)
    W, X, R = torch.randn(4, 6, generator=g), torch.randn(3, 6, generator=g), torch.randn(3, 4, generator=g)
    got = alpha_beta(X.clamp(min=0), X.clamp(max=0), W, R, lambda x, w: F.linear(x, w), alpha)
    torch.testing.assert_close(got, ref_linear_relprop(W, X, R, alpha).detach(), rtol=1e-5, atol=1e-6)


def test_z_plus_conserves_on_bias_free_linear_and_conv() -> None:
    g = torch.Generator().manual_seed(1)
    W, X, R = torch.randn(4, 6, generator=g), torch.rand(3, 6, generator=g) + 0.1, torch.randn(3, 4, generator=g)
    R_in = alpha_beta(X, torch.zeros_like(X), W.abs() + 0.01, R, lambda x, w: F.linear(x, w))
    torch.testing.assert_close(R_in.sum(1), R.sum(1), rtol=0, atol=1e-5)
    Wc, Xc = torch.randn(5, 3, 3, 3, generator=g), torch.rand(2, 3, 6, 6, generator=g) + 0.1
    Rc = torch.randn(2, 5, 6, 6, generator=g)
    R_in = alpha_beta(Xc, torch.zeros_like(Xc), Wc.abs() + 0.01, Rc, lambda x, w: F.conv2d(x, w, padding=1))
    torch.testing.assert_close(R_in.sum((1, 2, 3)), Rc.sum((1, 2, 3)), rtol=0, atol=1e-5)


def test_membrane_carry_hand_computed_three_steps() -> None:
    # lambda = 1, v = (1, 3, -), x = (-, 1, 1), R = (1, 2, 4):
    # w0 = 1 / (1 + 1) = 1/2, w1 = 3 / (1 + 3) = 3/4
    # t=1: R~1 = 2 + 3/4 * 4 = 5, R~2 = 1/4 * 4 = 1; t=0: R~0 = 1 + 1/2 * 5 = 3.5, R~1 = 2.5
    R = torch.tensor([1.0, 2.0, 4.0])
    got = membrane_carry(R, torch.tensor([1.0, 3.0, 0.0]), torch.tensor([0.0, 1.0, 1.0]), 1.0)
    torch.testing.assert_close(got, torch.tensor([3.5, 2.5, 1.0]))
    assert float(got.sum()) == pytest.approx(float(R.sum()))


def test_membrane_carry_equals_eventrpg_plif_with_fixed_tau() -> None:
    g = torch.Generator().manual_seed(2)
    T, tau = 6, 2.5
    R, v, x = torch.randn(T, 3, 4, generator=g), torch.rand(T, 3, 4, generator=g), torch.rand(T, 3, 4, generator=g)
    lam = (1 - 1 / tau) / (1 / tau)  # PLIF's share of the carried membrane
    want = ref_plif_cal_R_new(R, v[:-1], x[1:], tau)
    torch.testing.assert_close(membrane_carry(R, v, x, lam), want, rtol=1e-5, atol=1e-6)


# -- whole passes ----------------------------------------------------------------------------------
def _t1_model() -> VGG:
    torch.manual_seed(0)
    card = dataclasses.replace(tiny_card("snn"), name="tiny_snn_t1", T=1, encoding="direct")
    return make_fire(VGG(card).eval(), 8)


def test_slrp_equals_sltrp_at_t1() -> None:
    model, b = _t1_model(), tiny_batch(2)
    inp = ExplainInput(model, model.card, "conv3", b.x, b.y, b.sample_id, 3)
    a, _, _ = relevance_pass(inp, "sltrp", 1.0)
    s, _, _ = relevance_pass(inp, "slrp", 1.0)
    assert a.abs().sum() > 0
    torch.testing.assert_close(a, s, rtol=1e-5, atol=1e-7)


def test_relcam_is_spikes_times_channel_relevance() -> None:
    model, b = tiny_vgg("snn"), tiny_batch(2)
    inp = ExplainInput(model, model.card, "conv3", b.x, b.y, b.sample_id, 3)
    _, R, Fm = relevance_pass(inp, "sltrp", 1.0, layer="conv3")
    from bench.registry import METHODS

    entry = METHODS.get("relcam")
    cam = entry.obj(inp, entry.make_params())
    want = torch.einsum("tbchw,tbc->tbhw", Fm, R.sum((-2, -1)))
    torch.testing.assert_close(cam, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["sltrp", "slrp"])
def test_conservation_residual_of_a_pass_is_small_and_finite(mode: str) -> None:
    model, b = tiny_vgg("snn"), tiny_batch(2)
    inp = ExplainInput(model, model.card, "conv3", b.x, b.y, b.sample_id, 3)
    res = relevance_conservation(inp, mode)
    assert res.shape == (2,) and torch.isfinite(res).all() and (res < 1e-5).all(), res


def test_conservation_residual_core() -> None:
    r_out = torch.tensor([[1.0, -1.0], [2.0, 2.0]])
    r_in = torch.tensor([[[0.5, -0.5]], [[1.0, 1.0]]])
    torch.testing.assert_close(conservation_residual(r_in, r_out), torch.tensor([0.0, 0.5], dtype=torch.float64))


# -- whole passes on a fully connected LIF net, against the rules chained by hand ---------------
def _fc_reference(mode: str):
    from test_methods_tsa import BETA, FcSnn, T, _inp

    from bench.models.record import record

    model = FcSnn()
    inp = _inp(model)
    names = model.layer_names()
    with torch.no_grad(), record(model, names, mem=True) as rec:
        model(inp.x, sample_id=inp.sample_id, seed=0)
    x0 = model.input_spikes(inp.x, inp.sample_id, 0)  # [T, B, F]
    acts = [x0] + [rec.spikes[n] for n in names]  # inputs of fc1, fc2, head
    weights = [fc.weight.detach() for fc in [*model.fcs, model.head]]
    K = weights[-1].shape[0]
    if mode == "slrp":  # time-averaged inputs, relevance through neurons unchanged
        R = contrastive_relevance(inp.target, K)
        for W, X in zip(reversed(weights), reversed(acts)):
            R = ref_linear_relprop(W, X.mean(0), R).detach()
        return inp, R
    R = contrastive_relevance(inp.target, K).expand(T, -1, -1)
    for li in range(len(weights) - 1, -1, -1):
        R = ref_linear_relprop(weights[li], acts[li], R).detach()  # relevance of layer li's input
        if li > 0:  # through the spiking layer that produced acts[li]: the membrane carry
            name = names[li - 1]
            s, u = rec.spikes[name], rec.mem[name]
            v = u - s  # post-reset membrane (threshold 1, subtract reset)
            z = F.linear(acts[li - 1], weights[li - 1])
            # u_t = leak v_{t-1} + z_t: PLIF's share (tau - 1) v / (x + (tau - 1) v) with tau - 1 = leak
            R = ref_plif_cal_R_new(R, v[:-1].clamp(min=0), z[1:].clamp(min=0), 1 + BETA)
            R = ref_safe_divide(R, z) * z  # relevance lives on the input current
    return inp, R


@pytest.mark.parametrize("mode", ["slrp", "sltrp"])
def test_fc_pass_equals_rules_chained_by_hand(mode: str) -> None:
    inp, want = _fc_reference(mode)
    got, _, _ = relevance_pass(inp, mode, 1.0)
    got = got[0] if mode == "slrp" else got
    assert want.abs().sum() > 0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
