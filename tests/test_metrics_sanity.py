"""Cascading model randomization: SSIM / Spearman known answers, layer order, determinism,
the untouched original, neuron parameters and degenerate maps."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from torch import nn

from bench.data.base import Batch
from bench.pipeline.memo import Memo
from bench.pipeline.services import direct_input
from bench.registry import METRICS
from metrics._randomize import cascade_layers
from metrics._ssim import gaussian_window, spearman, ssim
from metrics.base import ScoreInput

C1, C2 = 0.01 ** 2, 0.03 ** 2


@dataclasses.dataclass(frozen=True)
class Neuron:
    leak: float = 0.9
    threshold: float = 1.0


class Act(nn.Module):
    """A stand-in spiking layer carrying neuron parameters (as bench.models' Spiking does)."""

    def __init__(self):
        super().__init__()
        self.neuron = Neuron()

    def forward(self, z):
        return torch.relu(z - (1 - self.neuron.leak)) * self.neuron.threshold


class TinyNet(nn.Module):
    """conv(3->4) -> act -> conv(4->4) -> act -> pool -> fc(4->3). Modules are registered in an
    order unlike the forward order (fc first) so the test sees the forward pass decide."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.fc = nn.Linear(4, 3)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.act1, self.act2 = Act(), Act()

    def forward(self, x, sample_id=None, seed=0):
        h = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(h.mean(dim=(2, 3)))


def gradient_explainer(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """|d logit_0 / d x| summed over channels, scaled to [0, 1] per sample."""
    x = x.clone().requires_grad_(True)
    model(x)[:, 0].sum().backward()
    g = x.grad.abs().sum(1)
    return g / g.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)


def model_blind_explainer(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Ignores the model (an edge detector): fails the sanity check by construction."""
    e = x.abs().sum(1)
    return e / e.flatten(1).amax(1).view(-1, 1, 1)


def make_input(explain=gradient_explainer, b=3, seed=0, model=None, maps=None, memo=None) -> ScoreInput:
    model = model or TinyNet()
    x = torch.randn(b, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    batch = Batch(x=x, y=torch.zeros(b, dtype=torch.long), sample_id=torch.arange(b))
    return direct_input(explain(model, x) if maps is None else maps, batch, method_model=model,
                        explain=explain, seed=seed, memo=memo)


def run(name, inp, **params):
    entry = METRICS.get(name)
    return entry.obj(inp, entry.make_params(params))


# -- SSIM and Spearman --------------------------------------------------------------------------

def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))


def test_ssim_of_constant_images_is_the_luminance_formula():
    a, b = 0.8, 0.3
    out = ssim(torch.full((1, 16, 16), a), torch.full((1, 16, 16), b)).item()
    assert out == pytest.approx((2 * a * b + C1) / (a * a + b * b + C1))


def test_ssim_single_window_by_hand():
    # An 11 x 11 image has exactly one valid window: SSIM is the weighted-statistics formula.
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(11, 11, generator=g).double(), torch.rand(11, 11, generator=g).double()
    w = gaussian_window(11, 1.5).numpy()
    xn, yn = x.numpy(), y.numpy()
    mx, my = (w * xn).sum(), (w * yn).sum()
    vx, vy = (w * (xn - mx) ** 2).sum(), (w * (yn - my) ** 2).sum()
    cxy = (w * (xn - mx) * (yn - my)).sum()
    want = (2 * mx * my + C1) * (2 * cxy + C2) / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2))
    assert ssim(x[None], y[None]).item() == pytest.approx(want, rel=1e-10)
    assert ssim(y[None], x[None]).item() == pytest.approx(want, rel=1e-10)


def test_gaussian_window_values():
    w = gaussian_window(3, 1.0)
    g = np.exp(-np.array([1.0, 0.0, 1.0]) / 2)
    assert np.allclose(w.numpy(), np.outer(g, g) / np.outer(g, g).sum())


def test_spearman_matches_scipy_with_ties_and_is_nan_on_constants():
    g = torch.Generator().manual_seed(2)
    a = torch.randint(0, 5, (3, 30), generator=g).float()
    b = torch.randint(0, 5, (3, 30), generator=g).float()
    want = [spearmanr(a[i].numpy(), b[i].numpy()).statistic for i in range(3)]
    assert np.allclose(spearman(a, b).numpy(), want, atol=1e-6)
    assert spearman(a, a ** 3 + 1).tolist() == pytest.approx([1.0] * 3)
    assert spearman(a, -a).tolist() == pytest.approx([-1.0] * 3)
    assert math.isnan(spearman(torch.zeros(1, 30), b[:1]).item())


# -- cascading randomization --------------------------------------------------------------------

def test_cascade_follows_the_forward_pass_from_the_top():
    net = TinyNet()
    groups = cascade_layers(net, torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.long))
    assert groups == [("fc", []), ("conv2", ["act2"]), ("conv1", ["act1"])]


def test_original_model_is_untouched_and_stages_are_reported():
    model = TinyNet()
    inp = make_input(model=model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = run("model_randomization", inp)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.act1.neuron == Neuron()
    assert out.curve.shape == (3, 3) and out.points == (1.0, 2.0, 3.0)
    assert torch.allclose(out.values, torch.nanmean(out.curve, dim=1))
    assert run("model_randomization", inp, max_stages=2).curve.shape == (3, 2)


def test_randomization_is_seeded_and_batch_independent():
    a = run("model_randomization_ssim", make_input(seed=0))
    b = run("model_randomization_ssim", make_input(seed=0))
    c = run("model_randomization_ssim", make_input(seed=1))
    assert torch.equal(a.curve, b.curve) and not torch.equal(a.curve, c.curve)
    one = run("model_randomization_ssim", make_input(seed=0, b=1))
    assert torch.allclose(one.curve, a.curve[:1])


def test_model_blind_method_fails_and_gradient_method_passes():
    blind = run("model_randomization", make_input(model_blind_explainer))
    assert torch.allclose(blind.curve, torch.ones_like(blind.curve))
    blind_ssim = run("model_randomization_ssim", make_input(model_blind_explainer))
    assert torch.allclose(blind_ssim.values, torch.ones(3))
    grad = run("model_randomization", make_input(gradient_explainer))
    assert bool((grad.values < 0.9).all())


def test_neuron_parameters_change_only_when_asked():
    seen = []

    def spy(model, x):
        seen.append((model.act1.neuron, model.act2.neuron))
        return gradient_explainer(model, x)

    maps = gradient_explainer(TinyNet(), torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(5)))
    run("model_randomization", make_input(spy, maps=maps))
    assert all(n == (Neuron(), Neuron()) for n in seen)
    seen.clear()
    run("model_randomization", make_input(spy, maps=maps), randomize_neurons=True)
    # stage 1 randomizes fc only; stage 2 adds conv2 with act2; stage 3 conv1 with act1
    assert seen[0] == (Neuron(), Neuron())
    assert seen[1][0] == Neuron() and seen[1][1] != Neuron()
    assert seen[2][0] != Neuron() and seen[2][0].leak <= 1.0


def test_match_scale_init_keeps_weight_scale():
    captured = []

    def spy(model, x):
        captured.append(model.conv1.weight.detach().std().item())
        return gradient_explainer(model, x)

    net = TinyNet()
    net.conv1.weight.data.mul_(10)
    maps = gradient_explainer(net, torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(5)))
    run("model_randomization", make_input(spy, model=net, maps=maps), weight_init="match_scale")
    assert captured[-1] == pytest.approx(net.conv1.weight.std().item(), rel=0.3)


def test_degenerate_maps_give_nan_not_a_crash():
    silent = make_input(maps=torch.zeros(3, 12, 12))
    for name in ("model_randomization", "model_randomization_ssim"):
        out = run(name, silent)
        assert torch.isnan(out.values).all() and torch.isnan(out.curve).all()

    def silent_after_randomization(model, x):
        return torch.zeros(x.shape[0], *x.shape[2:])

    inp = make_input(silent_after_randomization, maps=gradient_explainer(TinyNet(), make_input().batch.x))
    rho = run("model_randomization", inp)
    assert torch.isnan(rho.curve).all() and torch.isnan(rho.values).all()
    s = run("model_randomization_ssim", inp)
    assert torch.isfinite(s.curve).all()  # SSIM against an all-zero map is defined


def test_spearman_and_ssim_share_one_set_of_randomized_explanations():
    calls = []

    def counting(model, x):
        calls.append(1)
        return gradient_explainer(model, x)

    memo = Memo()
    model = TinyNet()
    first = make_input(counting, model=model, memo=memo)
    n0 = len(calls)  # make_input explained once for the original maps
    run("model_randomization", first)
    assert len(calls) - n0 == 3  # one explanation per stage
    run("model_randomization_ssim", first)  # the same stages, found in the memo
    assert len(calls) - n0 == 3
    run("model_randomization_ssim", first, max_stages=2)  # stage s is the same in a shorter cascade
    assert len(calls) - n0 == 3
    run("model_randomization_ssim", first, weight_init="match_scale")  # another derivation: recomputed
    assert len(calls) - n0 == 3 + 3
    run("model_randomization_ssim", make_input(counting, model=model, seed=1, memo=memo))  # another seed
    assert len(calls) - n0 == 3 + 3 + 1 + 3  # (+1: make_input's own maps)


def test_memoized_stages_equal_a_direct_computation_and_never_collide():
    """Each cascade stage is its own derived model: the memo holds one explanation per stage,
    none under the trained model's key, and the scores equal a fresh computation (with colliding
    stage keys, stage 2 would get stage 1's maps: the curves would differ)."""
    memo = Memo()
    model = TinyNet()
    inp = make_input(model=model, memo=memo)
    want = run("model_randomization", make_input(model=model))
    got = run("model_randomization", inp)
    assert torch.equal(got.curve, want.curve)
    assert not torch.allclose(got.curve[:, 0], got.curve[:, 1])  # the stages differ
    model_keys = [k[1] for k in memo.keys() if k[0] == "explanation"]
    assert len(model_keys) == 3 and len(set(model_keys)) == 3
    assert all("RandomizedStage" in k for k in model_keys)
    # the memo's maps are the ones a fresh explanation of each stage gives
    again = run("model_randomization_ssim", inp)
    assert torch.equal(again.curve, run("model_randomization_ssim", make_input(model=model)).curve)


def test_a_randomized_stage_equals_the_cumulative_cascade():
    """RandomizedStage(s) built from scratch has the weights of the cascade's s-th stage."""
    from metrics._randomize import cascade
    from metrics.sanity import RandomizedStage

    model = TinyNet()
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    ids = torch.arange(2)
    for s, stage in enumerate(cascade(model, x, ids, seed=4), 1):
        built = RandomizedStage("default", False, s).build(model, x, ids, 4)
        for (n, a), (_, b) in zip(stage.state_dict().items(), built.state_dict().items()):
            assert torch.equal(a, b), (s, n)
