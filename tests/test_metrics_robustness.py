"""Robustness metrics: accuracy under attack, the audit, explanation stability, paired comparison."""

import dataclasses
import functools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from basic_models import ConstantLogits, PixelLinear, SmallConvNet

import metrics.robustness as rob
from bench.attacks.audit import audit_table, audit_warnings, paired_stability
from bench.attacks.stability import center_of_mass, com_shift, topk_intersection
from bench.data.base import Batch, normalize
from bench.errors import BenchError, ConfigError
from bench.models import get_card
from bench.pipeline.memo import Memo
from bench.pipeline.services import direct_input, direct_model_input
from bench.registry import METRICS
from metrics._ssim import spearman, ssim

MEAN, STD = (0.5,), (0.25,)
H, K = 8, 3
EPS = (1 / 255, 8 / 255, 64 / 255)


Linear = functools.partial(PixelLinear, (1, H, H), K, scale=0.3, bias=False)
Constant = functools.partial(ConstantLogits, (2.0, 1.0, 0.0))


def batch(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(n, H, H, dtype=torch.bool)
    mask[:, 2:5, 2:5] = True
    return Batch(x=normalize(torch.rand(n, 1, H, H, generator=g), MEAN, STD),
                 y=torch.randint(0, K, (n,), generator=g), sample_id=torch.arange(n), mask=mask)


def params(cls=rob.AttackParams, **kw):
    return cls(epsilons=EPS, steps=5, **kw)


def model_input(model, b, named=None):
    return direct_model_input(b, model, seed=3, data_mean=MEAN, data_std=STD, named=named)


def rows(model_name, metric, scores):
    """Scores -> results-schema rows, as the runner writes them (point = eps)."""
    out = []
    for i in range(scores.values.shape[0]):
        if scores.curve is None:
            out.append(dict(dataset="d", model=model_name, method="", method_model="", sample_id=i,
                            metric=metric, timestep=np.nan, point=np.nan, value=float(scores.values[i])))
            continue
        for p, v in zip(scores.points, scores.curve[i].tolist()):
            out.append(dict(dataset="d", model=model_name, method="", method_model="", sample_id=i,
                            metric=metric, timestep=np.nan, point=p, value=v))
    return out


# -- stability functions ---------------------------------------------------------------------
def test_identical_maps_score_perfectly():
    a = torch.rand(4, H, H)
    assert torch.allclose(spearman(a, a), torch.ones(4))
    assert torch.allclose(topk_intersection(a, a, 0.1), torch.ones(4))
    assert torch.allclose(ssim(a, a).float(), torch.ones(4))
    assert torch.allclose(com_shift(a, a), torch.zeros(4))


def test_independent_maps_score_near_chance():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(64, 32, 32, generator=g), torch.rand(64, 32, 32, generator=g)
    assert abs(spearman(a, b).mean()) < 0.02
    assert abs(topk_intersection(a, b, 0.1).mean() - 0.1) < 0.02  # chance = frac
    assert abs(ssim(a, b).mean()) < 0.05


def test_com_shift_known_answer_and_nan():
    a, b = torch.zeros(1, H, H), torch.zeros(1, H, H)
    a[0, 1, 1] = 1.0
    b[0, 4, 5] = 1.0  # moved by (3, 4): distance 5
    assert torch.allclose(center_of_mass(a), torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    assert math.isclose(float(com_shift(a, b)), 5 / math.hypot(H - 1, H - 1), rel_tol=1e-6)
    assert math.isnan(float(com_shift(a, torch.zeros(1, H, H))))


# -- model-scope metrics -----------------------------------------------------------------------
def test_adversarial_accuracy_curve():
    model, b = Linear(), batch()
    s = rob.adversarial_accuracy(model_input(model, b), params())
    clean = (model(b.x).argmax(-1) == b.y).float()
    assert s.points == (0.0, *EPS) and s.curve.shape == (12, 4)
    assert torch.equal(s.curve[:, 0], clean)  # point 0 records who was already wrong
    assert (s.curve[:, 1:] <= clean[:, None]).all()
    assert s.curve[:, -1].sum() < clean.sum()  # 64/255 breaks this model
    assert torch.allclose(s.values, s.curve[:, 1:].mean(1))


def test_success_rates_and_transfer_from_itself(monkeypatch):
    model, b = Linear(), batch()
    white = rob.attack_success_whitebox(model_input(model, b), params())
    clean = model(b.x).argmax(-1) == b.y
    assert torch.isnan(white.curve[~clean]).all() and not torch.isnan(white.curve[clean]).any()
    # transfer from an identical copy crafts the same examples: same success
    twin = Linear()
    trans = rob.attack_success_transfer(model_input(model, b, named=lambda name: twin),
                                        params(rob.TransferParams, source="copy"))
    assert torch.equal(torch.nan_to_num(trans.curve, -1), torch.nan_to_num(white.curve, -1))
    noise = rob.attack_success_noise(model_input(model, b), params())
    assert noise.curve.shape == white.curve.shape
    assert torch.nansum(white.curve) >= torch.nansum(noise.curve)


def test_transfer_source_comes_from_the_services_loader(monkeypatch):
    """The source is asked for by name (``named_model``) and resolved by the services' loader
    (inside a run: the suite's dataset, cache and model seed), never by the metric."""
    import bench.attacks.resolve as resolve

    model, b, asked = Linear(), batch(), []
    monkeypatch.setattr(resolve, "load_source", lambda *a, **k: pytest.fail("default resolution used"))

    def loader(name):
        asked.append(name)
        return Linear()

    rob.attack_success_transfer(model_input(model, b, named=loader), params(rob.TransferParams, source="the_twin"))
    assert asked == ["the_twin"]


def test_zero_gradient_model_is_flagged():
    b = batch()
    const, lin = Constant(), Linear()
    recs = []
    for name, m in (("const", const), ("linear", lin)):
        inp = model_input(m, b)
        recs += rows(name, "attack_zero_gradient", rob.attack_zero_gradient(inp, params()))
        recs += rows(name, "attack_success_whitebox", rob.attack_success_whitebox(inp, params()))
        recs += rows(name, "attack_success_noise", rob.attack_success_noise(inp, params()))
        recs += rows(name, "adversarial_accuracy", rob.adversarial_accuracy(inp, params()))
    df = pd.DataFrame(recs)
    warnings = audit_warnings(df)
    assert any("const" in w and "zero" in w for w in warnings)
    assert not any("linear" in w for w in warnings)
    table = audit_table(df)
    assert set(table["model"]) == {"const", "linear"} and len(table) == 2 * len(EPS)
    assert (table.loc[table["model"] == "const", "zero_grad"] == 1.0).all()


def test_audit_warns_when_whitebox_significantly_weaker():
    def table(n_white, n_noise, n=40):
        return pd.DataFrame([dict(dataset="d", model="m", method="", sample_id=i, metric=m, timestep=np.nan,
                                  point=0.01, value=v)
                             for i in range(n)
                             for m, v in (("attack_success_whitebox", float(i < n_white)),
                                          ("attack_success_noise", float(i < n_noise)),
                                          ("attack_success_transfer", float(i < 1)))])

    w = audit_warnings(table(5, 20))  # 15 discordant samples, all for noise: p = 0.5**15
    assert len(w) == 1 and "12.5% < noise 50.0%" in w[0] and "p=3.1e-05" in w[0]
    assert audit_warnings(table(5, 7)) == []  # 2 samples: within chance
    assert audit_warnings(table(40, 20)) == []
    assert math.isclose(audit_table(table(5, 20))["p_noise"].iloc[0], 0.5**15)


# -- explanation stability -------------------------------------------------------------------
def stability_input(model, b, explain_fn, maps, memo=None):
    return direct_input(maps, b, model=model, explain=explain_fn, seed=0, data_mean=MEAN, data_std=STD, memo=memo)


def test_stability_perfect_for_input_independent_explainer():
    model, b = Linear(), batch(6)
    fixed = torch.rand(6, H, H, generator=torch.Generator().manual_seed(1))
    fixed[:, 3, 3] = 2.0  # argmax inside the mask: every clean hit must be kept
    fn = lambda m, x: fixed.clone()
    inp = stability_input(model, b, fn, fixed)
    assert torch.allclose(rob.stability_spearman(inp, params()).curve, torch.ones(6, 3))
    assert torch.allclose(rob.stability_topk(inp, params(rob.StabilityTopkParams)).curve, torch.ones(6, 3))
    assert torch.allclose(rob.stability_ssim(inp, params()).curve, torch.ones(6, 3))
    assert torch.allclose(rob.stability_com_shift(inp, params()).curve, torch.zeros(6, 3))
    kept = rob.stability_pointing(inp, params(rob.StabilityPointingParams, tolerance=0.0))
    assert torch.equal(kept.curve, torch.ones(6, 3))


def test_stability_near_chance_for_random_explainer():
    model, b = Linear(), batch(32)
    g = torch.Generator().manual_seed(2)
    fn = lambda m, x: torch.rand(x.shape[0], 32, 32, generator=g)
    inp = stability_input(model, b, fn, torch.rand(32, 32, 32, generator=g))
    assert abs(float(rob.stability_spearman(inp, params()).values.mean())) < 0.05
    assert abs(float(rob.stability_topk(inp, params(rob.StabilityTopkParams)).values.mean()) - 0.1) < 0.03


def test_stability_explains_the_attacked_input_of_the_method_model():
    model, b = Linear(), batch(4)
    seen = []

    def fn(m, x):
        seen.append((m, x))
        return x[:, 0].abs()

    memo = Memo()
    inp = stability_input(model, b, fn, b.x[:, 0].abs(), memo)
    out = rob.stability_spearman(inp, params())
    rob.stability_ssim(inp, params())  # shares the attacked maps with the first metric (the memo)
    assert len(seen) == len(EPS) and all(m is model for m, _ in seen)
    pixels = lambda x: x * STD[0] + MEAN[0]
    for (_, x), e in zip(seen, EPS):
        assert (pixels(x) - pixels(b.x)).abs().max() <= e + 1e-6
    # the inputs it compared come back with the scores (the gallery reads them there)
    assert out.attacked.points == EPS and all(torch.equal(a, x) for a, (_, x) in zip(out.attacked.inputs, seen))
    rob.stability_spearman(stability_input(model, b, fn, b.x[:, 0].abs(), Memo()), params())
    assert len(seen) == 2 * len(EPS)  # another memo: explained again
    other = Linear(scale=0.5)
    rob.stability_spearman(stability_input(other, b, fn, b.x[:, 0].abs(), memo), params())
    assert len(seen) == 3 * len(EPS)  # other weights: attacked and explained again


def test_memoized_stability_equals_a_direct_computation():
    """Scores through a shared memo equal fresh ones, for every eps and a second metric."""
    model, b = Linear(), batch(6)
    fn = lambda m, x: torch.softmax((x[:, 0] * m.w[0].view(H, H)).flatten(1), 1).view(-1, H, H)
    memo = Memo()
    keyed = stability_input(model, b, fn, fn(model, b.x), memo)
    for metric, p in ((rob.stability_spearman, params()), (rob.stability_topk, params(rob.StabilityTopkParams)),
                      (rob.stability_ssim, params())):
        fresh = stability_input(model, b, fn, fn(model, b.x), Memo())
        assert torch.equal(metric(keyed, p).curve, metric(fresh, p).curve)
    maps = [k for k in memo.keys() if k[0] == "explanation"]
    assert len(maps) == len(EPS)  # one re-explanation per attacked input, shared by the metrics
    assert len([k for k in memo.keys() if k[0] == "attack"]) == len(EPS)


# -- params, registry, paired comparison --------------------------------------------------------
def test_params_and_registration():
    entry = METRICS.get("adversarial_accuracy")
    assert entry.spec.scope == "model" and entry.spec.output == "curve"
    assert METRICS.get("stability_spearman").spec.scope == "explanation"
    with pytest.raises(ConfigError):
        entry.make_params({"epsilons": [8.0]})  # 0-255 units by mistake
    assert entry.make_params({}).epsilons == tuple(e / 255 for e in rob.EPS_255)


def test_paired_stability():
    rng = np.random.default_rng(0)
    recs = []
    for i in range(40):
        for p in (0.01, 0.02):
            base = rng.random()
            recs.append(dict(dataset="d", sample_id=i, point=p, timestep=np.nan, metric="stability_spearman",
                             method="sam", method_model="snn", value=base + 0.2 + 0.01 * rng.standard_normal()))
            recs.append(dict(dataset="d", sample_id=i, point=p, timestep=np.nan, metric="stability_spearman",
                             method="gradcam", method_model="ann", value=base))
    out = paired_stability(pd.DataFrame(recs), "stability_spearman", ("sam", "snn"), ("gradcam", "ann"))
    assert list(out["point"]) == [0.01, 0.02] and (out["n_pairs"] == 40).all()
    assert ((out["ci_lo"] < 0.2) & (out["ci_hi"] > 0.2) & (out["ci_lo"] > 0.15)).all()
    assert (out["p_holm"] < 1e-6).all()


# -- registry-wide contract of the robustness metrics ------------------------------------------
ROBUST = METRICS.names(category="robustness")


Net = functools.partial(SmallConvNet, 1, 4, K)


def contract_score(name, rows, monkeypatch):
    net = Net()
    b = batch(4).select(rows)
    maps = b.x[:, 0].abs() / b.x[:, 0].abs().flatten(1).amax(1).view(-1, 1, 1)
    inp = direct_input(maps, b, model=net, seed=1, data_mean=MEAN, data_std=STD,
                       explain=lambda m, x: x[:, 0].abs() / x[:, 0].abs().flatten(1).amax(1).view(-1, 1, 1))
    entry = METRICS.get(name)
    if entry.spec.scope == "model":  # model-scope metrics see no maps
        inp = direct_model_input(b, net, seed=1, data_mean=MEAN, data_std=STD, named=lambda n: net)
    table = {"source": "net"} if "source" in {f.name for f in dataclasses.fields(entry.params_cls)} else {}
    return entry.obj(inp, entry.make_params({"steps": 3, **table}))


@pytest.mark.parametrize("name", ROBUST)
def test_contract(name, monkeypatch):
    e = METRICS.get(name)
    assert e.obj.__name__ == name and e.spec.scope in ("model", "explanation")
    assert e.spec.needs <= {"mask", "box", "model", "explainer"} and isinstance(e.spec.per_timestep, bool)
    assert e.params_cls.__dataclass_params__.frozen
    out = contract_score(name, slice(None), monkeypatch)
    assert out.values.shape == (4,) and not torch.isinf(out.values).any()
    if e.spec.output == "curve":
        assert out.curve.shape == (4, len(out.points)) and list(out.points) == sorted(out.points)
    for i in (0, 2):  # a sample's score does not depend on its batch neighbours
        alone = contract_score(name, slice(i, i + 1), monkeypatch)
        assert torch.allclose(out.values[i], alone.values[0], equal_nan=True, atol=1e-5)


def test_zoo_resolution():
    from bench.attacks.resolve import is_stochastic, norm_stats, transfer_source_name
    from bench.models import build_model

    ann, poisson = build_model("vgg5_ann"), build_model("vgg5_snn_t8_poisson")
    x = torch.zeros(1, 3, 32, 32)
    assert is_stochastic(poisson, x, torch.zeros(1, dtype=torch.long)) and not is_stochastic(ann, x, torch.zeros(1))
    assert transfer_source_name(poisson, "") == "vgg5_ann" and transfer_source_name(ann, "x") == "x"
    assert transfer_source_name(ann, "") == get_card("vgg5_ann").twin
    from bench.data import get_dataset

    ds = get_dataset(get_card("vgg5_ann").dataset, "test")
    assert norm_stats(ann, None, None) == (tuple(ds.mean), tuple(ds.std))
    with pytest.raises(BenchError):
        norm_stats(Net(), None, None)
