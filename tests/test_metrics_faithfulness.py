"""Deletion / insertion: AUC rule, analytic curves of a linear model, substrates, presets,
batching and the per-sample encoding of a spiking model."""

from __future__ import annotations

import pytest
import torch

from bench.data.base import Batch
from bench.errors import BenchError
from bench.registry import METRICS
from bench.seeding import per_sample_randn
from metrics import _faithfulness as FA
from metrics.base import ScoreInput
from metrics.faithfulness import PerturbationParams, resolve


class Linear2(torch.nn.Module):
    """logits = [sum(w * x), 0]: the class-0 logit is a known weighted pixel sum."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = w  # [C, H, W]

    def forward(self, x, sample_id=None, seed=0):
        s = (x * self.w).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], dim=1)


class NoisySpiking(torch.nn.Module):
    """Like Linear2 plus 'encoding' noise keyed by sample id (as a Poisson-coded SNN)."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.lin = Linear2(w)

    def forward(self, x, sample_id=None, seed=0):
        noise = per_sample_randn(seed, sample_id, "enc", tuple(x.shape[1:]))
        return self.lin(x + 0.3 * noise)


def model_fn(model):
    return lambda x, ids: model(x, sample_id=ids)


def distinct_weights(h=4, w=4, seed=0):
    return torch.randperm(h * w, generator=torch.Generator().manual_seed(seed)).float().add(1).view(1, h, w)


def test_auc_rise_formula_on_a_hand_made_curve():
    c = torch.tensor([[1.0, 0.5, 0.25, 0.0], [0.2, 0.2, 0.2, 0.2]])
    assert torch.allclose(FA.auc(c), torch.tensor([(1.75 - 0.5 - 0.0) / 3, 0.2]))
    assert torch.allclose(FA.auc(c, "mean"), torch.tensor([0.4375, 0.2]))
    with pytest.raises(BenchError):
        FA.auc(c[:, :1])


def test_step_counts_cover_zero_to_all_pixels():
    ks = FA.step_counts(1024, 32)
    assert ks[0] == 0 and ks[-1] == 1024 and len(ks) == 33
    assert torch.equal(ks, torch.arange(33) * 32)
    assert FA.step_counts(10, 4).tolist() == [0, 2, 5, 8, 10]


def test_linear_model_gives_the_analytic_deletion_and_insertion_curves():
    w = distinct_weights()
    x = torch.ones(1, 1, 4, 4)
    maps = w / w.max()  # the true ranking
    model = Linear2(w)
    kw = dict(substrate="zero", n_steps=16, score="logit")
    dele = FA.deletion_curve(model_fn(model), x, maps, **kw)
    ins = FA.insertion_curve(model_fn(model), x, maps, **kw)
    top = torch.sort(w.flatten(), descending=True).values.cumsum(0)
    total = w.sum()
    assert torch.allclose(dele[0], torch.cat([total.view(1), total - top]))
    assert torch.allclose(ins[0], torch.cat([torch.zeros(1), top]))
    # softmax probability of class 0 is sigmoid(logit0 - 0)
    prob = FA.deletion_curve(model_fn(model), x / 40, maps, substrate="zero", n_steps=16)
    assert torch.allclose(prob[0], torch.sigmoid(torch.cat([total.view(1), total - top]) / 40), atol=1e-6)


def test_oracle_ranking_beats_random_beats_inverse():
    w = distinct_weights(8, 8)
    x = torch.ones(1, 1, 8, 8) / 60
    model = model_fn(Linear2(w))
    oracle, inverse = w / w.max(), 1 - w / w.max()
    rand = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(3))
    kw = dict(substrate="zero", n_steps=16)
    d = [FA.auc(FA.deletion_curve(model, x, m, **kw)).item() for m in (oracle, rand, inverse)]
    i = [FA.auc(FA.insertion_curve(model, x, m, **kw)).item() for m in (oracle, rand, inverse)]
    assert d[0] < d[1] < d[2]
    assert i[0] > i[1] > i[2]


def test_substrates():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(FA.make_substrate(x, "zero"), torch.zeros_like(x))
    mean = FA.make_substrate(x, "mean")
    assert torch.allclose(mean[:, :, 3, 5], x.mean(dim=(2, 3)))
    gray = FA.make_substrate(x, "gray", gray=torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(gray[1, :, 0, 0], torch.tensor([1.0, 2.0, 3.0]))
    const = torch.full((1, 3, 8, 8), 0.7)
    assert torch.allclose(FA.gaussian_blur(const, 11, 5.0), const)  # reflect padding: no dark rim
    blurred = FA.gaussian_blur(x, 3, 1.0)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    with pytest.raises(BenchError, match="gray"):
        FA.make_substrate(x, "gray")
    with pytest.raises(BenchError, match="odd"):
        FA.gaussian_blur(x, 4, 1.0)


def test_blur_is_the_normalized_gaussian_filter():
    img = torch.zeros(1, 1, 9, 9)
    img[0, 0, 4, 4] = 1.0
    out = FA.gaussian_blur(img, 5, 1.0)[0, 0]
    t = torch.arange(5.0) - 2
    g = torch.exp(-t ** 2 / 2)
    g = g / g.sum()
    assert torch.allclose(out[2:7, 2:7], torch.outer(g, g), atol=1e-7)


def test_chunking_and_batch_composition_do_not_change_curves():
    w = distinct_weights(6, 6)
    model = model_fn(NoisySpiking(w))
    x = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    maps = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(2))
    ids = torch.tensor([7, 11, 13])
    big = FA.deletion_curve(model, x, maps, sample_id=ids, n_steps=9, max_batch=1000)
    small = FA.deletion_curve(model, x, maps, sample_id=ids, n_steps=9, max_batch=1)
    alone = FA.deletion_curve(model, x[1:2], maps[1:2], sample_id=ids[1:2], n_steps=9)
    assert torch.allclose(big, small) and torch.allclose(big[1:2], alone)


def test_spiking_model_sees_one_encoding_along_the_curve():
    w = distinct_weights(6, 6)
    net = NoisySpiking(w)
    x = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    maps = torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(2))
    ids = torch.tensor([3, 4])
    kw = dict(sample_id=ids, n_steps=6, score="logit", target=torch.zeros(2, dtype=torch.long))
    noisy = FA.deletion_curve(model_fn(net), x, maps, **kw)
    plain = FA.deletion_curve(model_fn(Linear2(w)), x, maps, **kw)
    assert torch.allclose(noisy[:, 0], net(x, sample_id=ids)[:, 0])  # point 0: the clean image
    # The model is linear, so its encoding noise adds w . noise(sample): one constant per curve
    # exactly when every point of a sample's curve sees the same encoding.
    offset = noisy - plain
    assert torch.allclose(offset, offset[:, :1].expand_as(offset), atol=1e-4)
    assert not torch.allclose(offset[0, 0], offset[1, 0])  # and it is keyed per sample


def test_class_policy_label_vs_predicted():
    w = distinct_weights()
    x = torch.ones(1, 1, 4, 4)  # predicts class 0 (positive logit)
    maps = w / w.max()
    pred = FA.deletion_curve(model_fn(Linear2(w)), x, maps, n_steps=4, score="logit")
    lab = FA.deletion_curve(model_fn(Linear2(w)), x, maps, n_steps=4, score="logit",
                            target=torch.tensor([1]))
    assert pred[0, 0] == w.sum() and torch.equal(lab, torch.zeros(1, 5))


def test_tie_breaks():
    w = distinct_weights()
    x = torch.ones(1, 1, 4, 4)
    flat_map = torch.zeros(1, 4, 4)
    model = model_fn(Linear2(w))
    kw = dict(substrate="zero", n_steps=16, score="logit")
    stable = FA.deletion_curve(model, x, flat_map, **kw)
    # stable: pixels leave in row-major order
    assert torch.allclose(stable[0, 1:], w.sum() - w.flatten().cumsum(0))
    r1 = FA.deletion_curve(model, x, flat_map, tie_break="random", seed=1, sample_id=torch.tensor([5]), **kw)
    r1b = FA.deletion_curve(model, x, flat_map, tie_break="random", seed=1, sample_id=torch.tensor([5]), **kw)
    r2 = FA.deletion_curve(model, x, flat_map, tie_break="random", seed=2, sample_id=torch.tensor([5]), **kw)
    assert torch.equal(r1, r1b) and not torch.equal(r1, r2) and not torch.equal(r1, stable)


def test_presets_resolve_and_fields_override():
    rise = resolve(PerturbationParams(preset="rise2018"), "deletion", 32)
    assert (rise["substrate"], rise["n_steps"], rise["auc_rule"]) == ("zero", 32, "trapezoid")
    assert resolve(PerturbationParams(preset="rise2018"), "insertion", 32)["substrate"] == "blur"
    m4 = resolve(PerturbationParams(preset="m4"), "insertion", 32)
    assert (m4["substrate"], m4["n_steps"], m4["auc_rule"]) == ("gray", 20, "mean")
    assert resolve(PerturbationParams(preset="latec"), "deletion", 32)["class_policy"] == "label"
    d = resolve(PerturbationParams(), "deletion", 32)
    assert d["substrate"] == "blur" and d["class_policy"] == "pred"
    over = resolve(PerturbationParams(preset="rise2018", substrate="mean", n_steps=8), "deletion", 32)
    assert (over["substrate"], over["n_steps"]) == ("mean", 8)
    with pytest.raises(BenchError):
        METRICS.get("deletion").make_params({"n_steps": 0})
    with pytest.raises(BenchError):
        METRICS.get("deletion").make_params({"preset": "rise"})


def registered(name, params, data_stats=True, y=None):
    w = distinct_weights(8, 8)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    batch = Batch(x=x, y=y if y is not None else torch.tensor([0, 1]), sample_id=torch.tensor([0, 1]))
    stats = dict(data_mean=(0.5,), data_std=(0.25,)) if data_stats else {}
    inp = ScoreInput(maps=w.expand(2, -1, -1) / 64, batch=batch, model_fn=model_fn(Linear2(w / 64)), **stats)
    entry = METRICS.get(name)
    return entry.obj(inp, entry.make_params(params))


@pytest.mark.parametrize("preset", ["default", "rise2018", "m4", "latec"])
@pytest.mark.parametrize("name", ["deletion", "insertion"])
def test_registered_metrics_store_curves_and_aucs(name, preset):
    out = registered(name, {"preset": preset})
    spec = resolve(PerturbationParams(preset=preset), name, 8)
    assert out.curve.shape == (2, spec["n_steps"] + 1) and len(out.points) == spec["n_steps"] + 1
    assert out.points[0] == 0.0 and out.points[-1] == 1.0
    assert torch.allclose(out.values, FA.auc(out.curve, spec["auc_rule"]))
    assert bool(((out.curve >= 0) & (out.curve <= 1)).all())


def test_gray_substrate_uses_dataset_statistics():
    out = registered("deletion", {"preset": "m4", "score": "logit", "class_policy": "label"},
                     y=torch.tensor([0, 0]))
    # last point: every pixel gray 127/255 -> normalized (127/255 - 0.5) / 0.25
    gray = (127 / 255 - 0.5) / 0.25
    w = distinct_weights(8, 8) / 64
    assert torch.allclose(out.curve[:, -1], (w.sum() * gray).expand(2), atol=1e-5)
    with pytest.raises(BenchError, match="statistics"):
        registered("deletion", {"preset": "m4"}, data_stats=False)
