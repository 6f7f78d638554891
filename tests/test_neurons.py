"""LIF dynamics against snnTorch and hand-computed spike trains; surrogate gradients against their formulas."""

import math

import pytest
import torch

from bench.errors import BenchError
from bench.models.neurons import lif_multistep, spike

snn = pytest.importorskip("snntorch")
from snntorch import surrogate as snn_surrogate  # noqa: E402


def snntorch_run(inputs, **kw):
    """Spikes and membrane of ``snntorch.Leaky`` stepped over ``inputs`` ``[T, ...]``."""
    lif = snn.Leaky(**kw)
    mem = torch.zeros_like(inputs[0])
    spikes, mems = [], []
    for x in inputs:
        s, mem = lif(x, mem)
        spikes.append(s)
        mems.append(mem)
    return torch.stack(spikes), torch.stack(mems)


@pytest.mark.parametrize("leak,threshold", [(0.9, 1.0), (0.99, 0.7), (0.5, 1.3)])
def test_zero_reset_matches_snntorch(leak, threshold):
    # snnTorch's reset_delay=False resets in the same step, as the paper's code does.
    x = torch.randn(40, 8, 16, generator=torch.Generator().manual_seed(1)) * 1.5
    ours, u = lif_multistep(x, leak, threshold, "zero", return_mem=True)
    theirs, mem = snntorch_run(x, beta=leak, threshold=threshold, reset_mechanism="zero", reset_delay=False)
    assert torch.equal(ours, theirs) and 0 < ours.mean() < 0.9
    assert torch.allclose(u * (1 - ours), mem, atol=1e-6)  # snnTorch returns the post-reset membrane


@pytest.mark.parametrize("leak,threshold", [(0.9, 1.0), (0.99, 0.7), (0.5, 1.3)])
def test_subtract_reset_matches_snntorch(leak, threshold):
    # With reset_delay=False snnTorch also subtracts the threshold in the firing decision while the
    # post-reset membrane exceeds it; that only happens for u > 2*threshold, which inputs below the
    # threshold exclude (v <= threshold  =>  u < leak*threshold + threshold <= 2*threshold).
    x = (torch.rand(40, 8, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1) * threshold * 0.999
    ours, u = lif_multistep(x, leak, threshold, "subtract", return_mem=True)
    theirs, mem = snntorch_run(x, beta=leak, threshold=threshold, reset_mechanism="subtract", reset_delay=False)
    assert torch.equal(ours, theirs) and 0 < ours.mean() < 0.9
    assert torch.allclose(u - threshold * ours, mem, atol=1e-5)


def test_if_neuron_matches_snntorch_default_for_any_input():
    # IF (leak 1): snnTorch's delayed reset (the default) is the same dynamics for all inputs.
    x = torch.randn(50, 6, 10, generator=torch.Generator().manual_seed(3)) * 2.0 + 0.5
    ours, u = lif_multistep(x, 1.0, 1.0, "subtract", return_mem=True)
    theirs, mem = snntorch_run(x, beta=1.0, threshold=1.0, reset_mechanism="subtract")
    assert torch.equal(ours, theirs)
    assert torch.allclose(u, mem, atol=1e-5)  # delayed reset: snnTorch keeps the pre-reset u_t


def test_known_spike_trains_and_strict_threshold():
    const = torch.full((7, 1), 0.5)
    # IF, subtract: u = .5, 1.0 (not > 1: strict), 1.5 -> spike, v = .5, 1.0, 1.5 -> spike, ...
    assert lif_multistep(const, 1.0, 1.0, "subtract").flatten().tolist() == [0, 0, 1, 0, 1, 0, 1]
    # zero reset: after a spike the membrane restarts from 0
    assert lif_multistep(const, 1.0, 1.0, "zero").flatten().tolist() == [0, 0, 1, 0, 0, 1, 0]
    # leak .5, input 1: u = 1 (no), 1.5 (spike, v=.5), 1.25 (spike, v=.25), 1.125 (spike) ...
    s, u = lif_multistep(torch.ones(4, 1), 0.5, 1.0, "subtract", return_mem=True)
    assert s.flatten().tolist() == [0, 1, 1, 1]
    assert u.flatten().tolist() == [1.0, 1.5, 1.25, 1.125]


def test_initial_membrane():
    # init 0.5 (converted SNNs): u = .75, 1.0 (strict: no spike), 1.25 -> spike, v = .25, .5, .75, 1.0, 1.25
    s, u = lif_multistep(torch.full((6, 1), 0.25), 1.0, 1.0, "subtract", return_mem=True, init=0.5)
    assert s.flatten().tolist() == [0, 0, 1, 0, 0, 0] and u.flatten().tolist() == [0.75, 1.0, 1.25, 0.5, 0.75, 1.0]
    s2 = lif_multistep(torch.full((3, 1), 0.25), 1.0, 2.0, "subtract", init=0.5)  # init is a fraction of theta
    assert s2.flatten().tolist() == [0, 0, 0]


def _formula(name, x, scale):
    if name == "pwl":
        return scale * torch.clamp(1 - x.abs(), min=0)
    if name == "atan":
        return scale / 2 / (1 + (math.pi / 2 * scale * x) ** 2)
    return 1 / (scale * x.abs() + 1) ** 2


@pytest.mark.parametrize("name,scale", [("pwl", 0.3), ("atan", 2.0), ("fast_sigmoid", 25.0)])
@pytest.mark.parametrize("threshold", [1.0, 1.7])
def test_surrogate_gradients_equal_formulas(name, scale, threshold):
    u = torch.linspace(-1.0, 4.0, 101, requires_grad=True)
    s = spike(u, threshold, name, scale)
    assert torch.equal(s, (u > threshold).float())
    (g,) = torch.autograd.grad(s.sum(), u)
    expected = _formula(name, u.detach() / threshold - 1, scale) / threshold
    assert torch.allclose(g, expected, atol=1e-6)


def test_paper_pwl_values():
    # 0.3 * max(0, 1 - |u/theta - 1|) at theta = 1
    u = torch.tensor([1.0, 1.5, 0.5, 2.1, -0.2], requires_grad=True)
    (g,) = torch.autograd.grad(spike(u, 1.0, "pwl", 0.3).sum(), u)
    assert torch.allclose(g, torch.tensor([0.3, 0.15, 0.15, 0.0, 0.0]))


@pytest.mark.parametrize("name,fn", [("atan", snn_surrogate.atan(alpha=2.0)),
                                     ("fast_sigmoid", snn_surrogate.fast_sigmoid(slope=25.0))])
def test_surrogates_match_snntorch(name, fn):
    u = torch.linspace(-1.0, 3.0, 81, requires_grad=True)
    (ours,) = torch.autograd.grad(spike(u, 1.0, name, 2.0 if name == "atan" else 25.0).sum(), u)
    v = u.detach().clone().requires_grad_()
    (theirs,) = torch.autograd.grad(fn(v - 1.0).sum(), v)
    assert torch.allclose(ours, theirs, atol=1e-6)


def _stepwise(inputs, leak, threshold, reset, surrogate, scale):
    """Autograd through the step-by-step dynamics (the reference for the fused backward)."""
    v = torch.zeros_like(inputs[0])
    out = []
    for x in inputs:
        u = leak * v + x
        s = spike(u, threshold, surrogate, scale)
        v = u - s.detach() * threshold if reset == "subtract" else u * (1 - s.detach())
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate,scale", [("pwl", 0.3), ("atan", 2.0), ("fast_sigmoid", 5.0)])
def test_fused_backward_equals_autograd_through_time(reset, surrogate, scale):
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(9, 5, 7, generator=g) * 0.8 + 0.4).requires_grad_()
    w = torch.randn(9, 5, 7, generator=g)
    a = lif_multistep(x, 0.8, 1.2, reset, surrogate, scale)
    b = _stepwise(x, 0.8, 1.2, reset, surrogate, scale)
    assert torch.equal(a, b)
    (ga,) = torch.autograd.grad((a * w).sum(), x)
    (gb,) = torch.autograd.grad((b * w).sum(), x)
    assert torch.allclose(ga, gb, atol=1e-6) and ga.abs().sum() > 0


def test_pure_function_and_bad_options():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(5)) + 0.8
    assert torch.equal(lif_multistep(x, 0.9, 1.0), lif_multistep(x, 0.9, 1.0))
    with pytest.raises(BenchError, match="reset"):
        lif_multistep(x, 0.9, 1.0, reset="none")
    with pytest.raises(BenchError, match="surrogate"):
        lif_multistep(x, 0.9, 1.0, surrogate="sigmoid")


# --- order "fire_integrate": the SAM reference code's neuron (fire from v_{t-1}, then integrate) ---

def _stepwise_fire_integrate(inputs, leak, threshold, reset, surrogate, scale, init=0.0):
    """Autograd through a plain loop of the reference order: ``s_t = 1[v_{t-1} > theta]``, then
    ``v_t = leak v_{t-1} + I_t - theta s_t`` (or ``leak v_{t-1} (1 - s_t) + I_t``), reset detached."""
    v = torch.full_like(inputs[0], init * threshold)
    out = []
    for x in inputs:
        s = spike(v, threshold, surrogate, scale)
        if reset == "subtract":
            v = leak * v + x - threshold * s.detach()
        else:
            v = leak * v * (1 - s.detach()) + x
        out.append(s)
    return torch.stack(out)


def test_fire_integrate_known_spike_train():
    # IF, input .6: v = .6, 1.2, then s_2 = 1[1.2 > 1] and v = 1.2 + .6 - 1 = .8, 1.4 -> s_4 ...
    s, u = lif_multistep(torch.full((6, 1), 0.6, dtype=torch.float64), 1.0, 1.0, "subtract",
                         return_mem=True, order="fire_integrate")
    assert s.flatten().tolist() == [0, 0, 1, 0, 1, 0]
    assert torch.allclose(u.flatten(), torch.tensor([0.0, 0.6, 1.2, 0.8, 1.4, 1.0], dtype=torch.float64))
    # the reset is subtracted after the leak: leak .5, v_1 = 2 -> s_2 = 1, v_2 = .5*2 + 0 - 1 = 0
    x = torch.tensor([[2.0], [0.0], [0.0], [0.0]], dtype=torch.float64)
    s, u = lif_multistep(x, 0.5, 1.0, "subtract", return_mem=True, order="fire_integrate")
    assert s.flatten().tolist() == [0, 1, 0, 0] and u.flatten().tolist() == [0.0, 2.0, 0.0, 0.0]
    # integrate_fire on the same input leaks the reset: u = 2 (spike), .5*(2-1) = .5, ...
    s2, u2 = lif_multistep(x, 0.5, 1.0, "subtract", return_mem=True)
    assert s2.flatten().tolist() == [1, 0, 0, 0] and u2.flatten().tolist() == [2.0, 0.5, 0.25, 0.125]
    # init fires the first step: init 1.5 (of theta 1) > 1
    assert lif_multistep(torch.zeros(2, 1), 1.0, 1.0, init=1.5, order="fire_integrate").flatten().tolist() == [1, 0]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate,scale", [("pwl", 0.3), ("atan", 2.0), ("fast_sigmoid", 5.0)])
@pytest.mark.parametrize("init", [0.0, 0.5])
def test_fire_integrate_backward_equals_autograd_of_a_plain_loop(reset, surrogate, scale, init):
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(9, 5, 7, generator=g, dtype=torch.float64) * 0.8 + 0.4).requires_grad_()
    w = torch.randn(9, 5, 7, generator=g, dtype=torch.float64)
    a = lif_multistep(x, 0.8, 1.2, reset, surrogate, scale, init=init, order="fire_integrate")
    b = _stepwise_fire_integrate(x, 0.8, 1.2, reset, surrogate, scale, init)
    assert torch.equal(a, b) and 0 < a.mean() < 0.9
    (ga,) = torch.autograd.grad((a * w).sum(), x)
    (gb,) = torch.autograd.grad((b * w).sum(), x)
    torch.testing.assert_close(ga, gb, rtol=1e-12, atol=1e-12)
    assert ga[:-1].abs().sum() > 0 and torch.equal(ga[-1], torch.zeros_like(ga[-1]))  # I_{T-1} reaches no spike


def test_fire_integrate_if_neuron_is_integrate_fire_one_step_later():
    # IF (leak 1), subtract: by induction v_t(fire_integrate) = u_t(integrate_fire) (both hold the inputs
    # up to t minus the resets before t), so the reference order fires the same train one step later.
    x = torch.rand(12, 4, 6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    a = lif_multistep(x, 1.0, 1.0, "subtract", order="fire_integrate")
    b = lif_multistep(x, 1.0, 1.0, "subtract")
    assert torch.equal(a[1:], b[:-1]) and torch.equal(a[0], torch.zeros_like(a[0]))


def test_unknown_order():
    with pytest.raises(BenchError, match="neuron order"):
        lif_multistep(torch.zeros(2, 1), 0.9, 1.0, order="fire_first")
