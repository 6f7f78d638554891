"""Attacks: analytic FGSM, captum as oracle, budgets in pixel space, determinism, EOT, cache."""

import functools

import pytest
import torch
import torch.nn.functional as F
from basic_models import PixelLinear
from captum.robust import FGSM, PGD
from torch import nn

from bench.attacks.core import AttackSpec, attack, eot_seeds, eps_to_normalized, loss_grad, predict
from bench.data.base import denormalize, normalize
from bench.errors import BenchError
from bench.seeding import per_sample_rand

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.5)
C, H, K = 3, 6, 4


#: logits = W flatten(x) + b, a deterministic ANN; small weights: unsaturated softmax (captum
#: skips gradients below 1e-6)
Linear = functools.partial(PixelLinear, (C, H, H), K, scale=0.05)


class Stochastic(PixelLinear):
    """A Bernoulli input mask keyed by (seed, sample_id): a stand-in for Poisson encoding."""

    def __init__(self):
        super().__init__((C, H, H), K, scale=0.05)
        self.seen = []

    def forward(self, x, sample_id=None, seed=0):
        self.seen.append(int(seed))
        keep = (per_sample_rand(seed, sample_id, "encode", tuple(x.shape[1:])) < 0.5).float()
        return super().forward(x * keep)


def data(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(n, C, H, H, generator=g)
    return normalize(pixels, MEAN, STD), torch.randint(0, K, (n,), generator=g), torch.arange(10, 10 + n)


def pix(x):
    return denormalize(x, MEAN, STD)


def test_fgsm_equals_analytic_sign_step():
    model, (x, y, ids) = Linear(), data()
    eps = 3 / 255
    # d CE / d pixels = (softmax - onehot) W / std, per channel (the chain rule through normalize)
    p = torch.softmax(model(x), -1) - F.one_hot(y, K).float()
    g = (p @ model.w).view(-1, C, H, H) / torch.tensor(STD).view(1, C, 1, 1)
    expected = (pix(x) + eps * g.sign()).clamp(0, 1)
    adv = attack(model, x, y, ids, eps, AttackSpec(kind="fgsm"), MEAN, STD)
    assert torch.allclose(pix(adv), expected, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Input Tensor 0 did not already require gradients")
def test_matches_captum_in_pixel_space():
    """captum's FGSM/PGD (no random start) on the pixel-space model are the oracle."""
    model, (x, y, ids) = Linear(), data()
    eps = 4 / 255
    fwd = lambda p: model(normalize(p, MEAN, STD))
    ce = lambda out, t: F.cross_entropy(out, t, reduction="none")
    ref = FGSM(fwd, ce, lower_bound=0.0, upper_bound=1.0).perturb(pix(x), eps, y)
    ours = attack(model, x, y, ids, eps, AttackSpec(kind="fgsm"), MEAN, STD)
    assert torch.allclose(pix(ours), ref, atol=1e-6)
    ref = PGD(fwd, ce, lower_bound=0.0, upper_bound=1.0).perturb(pix(x), eps, 0.3 * eps, 5, y)
    ours = attack(model, x, y, ids, eps, AttackSpec(steps=5, step_frac=0.3, random_start=False), MEAN, STD)
    assert torch.allclose(pix(ours), ref, atol=1e-5)


@pytest.mark.parametrize("kind", ["fgsm", "pgd", "noise"])
def test_budget_and_pixel_range(kind):
    model = nn.Sequential(nn.Conv2d(C, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, K))
    net = lambda x, sample_id=None, seed=0: model(x)
    (x, y, ids), eps = data(8), 8 / 255
    x[0] = normalize(torch.ones(C, H, H), MEAN, STD)  # a saturated image: clamping must hold
    adv = attack(net, x, y, ids, eps, AttackSpec(kind=kind, steps=7), MEAN, STD)
    d = pix(adv) - pix(x)
    assert d.abs().max() <= eps + 1e-6 and d.abs().max() > eps / 2
    assert pix(adv).min() >= -1e-6 and pix(adv).max() <= 1 + 1e-6
    # in the model's input space the budget is eps / std per channel
    assert ((adv - x).abs().amax((0, 2, 3)) <= eps_to_normalized(eps, STD).flatten() + 1e-5).all()


def test_eps_conversion():
    assert torch.allclose(eps_to_normalized(2 / 255, STD).flatten(), torch.tensor(STD).reciprocal() * 2 / 255)
    model, (x, y, ids) = Linear(), data()
    x = normalize(torch.full((5, C, H, H), 0.5), MEAN, STD)  # mid-gray: no clamping
    adv = attack(model, x, y, ids, 2 / 255, AttackSpec(kind="noise"), MEAN, STD)
    step = (adv - x).abs()
    for c in range(C):
        assert torch.allclose(step[:, c], torch.full_like(step[:, c], 2 / 255 / STD[c]), atol=1e-5)
    with pytest.raises(BenchError, match="pixel units"):
        attack(model, x, y, ids, 8.0, AttackSpec(), MEAN, STD)


def test_deterministic_and_batch_independent():
    model, (x, y, ids) = Linear(), data(6)
    spec = AttackSpec(steps=3)
    a = attack(model, x, y, ids, 4 / 255, spec, MEAN, STD, seed=1)
    assert torch.equal(a, attack(model, x, y, ids, 4 / 255, spec, MEAN, STD, seed=1))
    assert not torch.equal(a, attack(model, x, y, ids, 4 / 255, spec, MEAN, STD, seed=2))
    part = attack(model, x[[4, 1]], y[[4, 1]], ids[[4, 1]], 4 / 255, spec, MEAN, STD, seed=1)
    assert torch.allclose(part, a[[4, 1]], atol=1e-6)


def test_eot_averages_distinct_encodings():
    model, (x, y, ids) = Stochastic(), data()
    seeds = eot_seeds(0, 4)
    assert len(set(seeds)) == 4 and 0 not in seeds
    p = pix(x)
    single = [loss_grad(model, p, y, ids, MEAN, STD, [s]) for s in seeds]
    assert not torch.allclose(single[0], single[1])  # the encodings differ
    assert torch.allclose(loss_grad(model, p, y, ids, MEAN, STD, seeds), torch.stack(single).mean(0), atol=1e-6)
    model.seen.clear()
    attack(model, x, y, ids, 2 / 255, AttackSpec(steps=3, eot=4), MEAN, STD, seed=0)
    assert len(model.seen) == 12 and len(set(model.seen)) == 12  # fresh encodings every step
    assert 0 not in model.seen  # the evaluation seed stays unknown to the attacker


def test_pgd_lowers_accuracy_of_linear_model():
    model, (x, _, ids) = Linear(), data(32)
    y = predict(model, x, ids)  # all correct on the clean input
    adv = attack(model, x, y, ids, 0.2, AttackSpec(), MEAN, STD)
    assert (predict(model, adv, ids) == y).float().mean() < 0.5


def test_the_memo_shares_attacks_by_content():
    """Adversarial batches live in the run's memo, keyed by the model's weights, the attack, the
    budget and the batch (never by object identity); they outlive the per-batch entries."""
    from bench.data.base import Batch
    from bench.pipeline.memo import Memo
    from bench.pipeline.services import direct_services
    from metrics.base import PROBED

    model, (x, y, ids) = Linear(), data()
    b, memo, spec = Batch(x=x, y=y, sample_id=ids), Memo(), AttackSpec(steps=2)
    attacks = lambda m: direct_services(b, model=m, data_mean=MEAN, data_std=STD, memo=memo)
    n_attacks = lambda: sum(k[0] == "attack" for k in memo.keys())
    a = attacks(model).attack(spec, 2 / 255, PROBED)
    again = attacks(model).attack(spec, 2 / 255, PROBED)
    assert torch.equal(a, again) and n_attacks() == 1
    assert torch.equal(attacks(Linear()).attack(spec, 2 / 255, PROBED), a) and n_attacks() == 1  # same weights
    attacks(model).attack(spec, 1 / 255, PROBED)
    attacks(Linear(seed=1)).attack(spec, 2 / 255, PROBED)  # other weights: another entry
    assert n_attacks() == 3
    memo.clear()  # the per-batch entries go, the adversarial batches stay
    assert n_attacks() == 3
    memo.clear_all()
    assert n_attacks() == 0


@pytest.mark.slow
def test_sweep_on_the_shipped_ann():
    from bench.attacks.sweep import accuracy_sweep

    df = accuracy_sweep(["vgg5_ann"], n=4, eps_255=[0.0, 64.0], eot=[1, 8], steps=2)
    assert list(df["eot"]) == [1, 1]  # a deterministic model is attacked without EOT
    assert (df["adv_acc"] <= df["clean_acc"]).all() and df["adv_acc"].iloc[0] == df["clean_acc"].iloc[0]
