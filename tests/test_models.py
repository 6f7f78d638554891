"""Cards, architectures, encoders and the model call contract (tiny inputs, CPU)."""

import dataclasses

import pytest
import torch

from bench.errors import BenchError, UnknownNameError
from bench.models import build_model, get_card
from bench.models.encoders import poisson, poisson_signed
from bench.registry import MODELS

VGG5 = ["vgg5_ann", "vgg5_snn_t8", "vgg5_snn_t8_poisson", "vgg5_snn_t8_if", "vgg5_snn_t8_conv"]


def _x(b=3, size=16, seed=0):
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_cards_registered_with_metadata():
    for name in VGG5 + ["vgg11_ann", "vgg11_snn_t30"]:
        card = get_card(name)
        entry = MODELS.get(name)
        assert card.name == name and entry.spec.kind == card.kind and entry.spec.T == card.T
        assert card.default_layer in build_model(dataclasses.replace(card, T=min(card.T, 2))).layer_names()
        if card.kind == "snn":
            assert get_card(card.twin).kind == "ann" and get_card(card.twin).arch == card.arch
    assert get_card("vgg5_snn_t8_conv").source == "converted"
    paper = get_card("vgg11_snn_t30")
    assert (paper.T, paper.encoding, paper.bn, paper.neuron.leak, paper.neuron.surrogate) == \
        (30, "poisson_signed", "bntt", 0.99, "pwl")
    assert paper.target_layers == ("conv4", "conv6", "conv8")
    with pytest.raises(UnknownNameError, match="did you mean 'vgg5_snn_t8'"):
        get_card("vgg5_snn_t88")


def test_vgg11_is_the_papers_topology():
    card = dataclasses.replace(get_card("vgg11_snn_t30"), T=2)
    m = build_model(card).eval()
    widths = [c.weight.shape[0] for c in m.convs]
    assert widths == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(c.kernel_size == (3, 3) and c.bias is None for c in m.convs)
    assert sorted(m.pool_after) == [1, 2, 4, 6]
    assert [tuple(f.weight.shape) for f in m.fcs] == [(4096, 512)] and m.head.weight.shape == (200, 4096)
    assert m.layer_names() == [f"conv{i}" for i in range(1, 9)] + ["fc1"]
    bn = m.norms[0]
    assert len(bn.steps) == 2 and all(b.bias is None and b.weight is not None for b in bn.steps)  # BNTT
    assert m(torch.randn(1, 3, 64, 64), sample_id=torch.tensor([0])).shape == (1, 200)


@pytest.mark.parametrize("name", VGG5)
def test_call_contract_and_twin_layer_names(name):
    m = build_model(name).eval()
    twin = build_model(get_card(name).twin or name)
    assert m.layer_names() == twin.layer_names() == ["conv1", "conv2", "conv3", "conv4"]
    assert m.card.name == name and m.T == (1 if m.card.kind == "ann" else 8)
    x, ids = _x(), torch.tensor([4, 5, 6])
    out = m(x, sample_id=ids, seed=3)
    assert out.shape == (3, 10)
    assert torch.equal(out, m(x, sample_id=ids, seed=3))  # same input and seed -> identical outputs
    with pytest.raises(BenchError, match="expected input"):
        m(torch.randn(2, 1, 16, 16))


def test_small_zoo_checkpoint_size():
    n = sum(p.numel() for p in build_model("vgg5_snn_t8").parameters())
    assert 30_000 < n < 150_000  # a few hundred KB as float32


def test_build_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = build_model("vgg5_snn_t8"), build_model("vgg5_snn_t8")
    assert torch.equal(torch.rand(1), before)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    c = build_model("vgg5_snn_t8", seed=1)
    assert not torch.equal(a.convs[0].weight, c.convs[0].weight)


def test_poisson_seed_and_sample_id_matter():
    m = build_model("vgg5_snn_t8_poisson").train()  # batch statistics make a random network fire
    x = _x()
    ids = torch.tensor([0, 1, 2])
    assert not torch.equal(m(x, sample_id=ids, seed=0), m(x, sample_id=ids, seed=1))
    torch.manual_seed(0)
    a = m(x)  # sample_id=None: global RNG (training)
    torch.manual_seed(0)
    assert torch.equal(a, m(x))


def test_poisson_sample_alone_equals_inside_batch():
    x, ids = _x(5), torch.tensor([10, 11, 12, 13, 14])
    batch = poisson_signed(x, 6, ids, seed=2)
    alone = poisson_signed(x[2:3], 6, ids[2:3], seed=2)
    assert batch.shape == (6, 5, 3, 16, 16)
    assert torch.equal(batch[:, 2:3], alone)
    twice = poisson_signed(torch.cat([x[:1], x[:1]]), 6, torch.tensor([10, 10]), seed=2)
    assert torch.equal(twice[:, 0], twice[:, 1])
    m = build_model("vgg5_snn_t8_poisson").eval()
    assert torch.allclose(m(x, sample_id=ids)[2:3], m(x[2:3], sample_id=ids[2:3]), atol=1e-5)


def test_signed_poisson_rates_and_straight_through_gradient():
    x = torch.tensor([[-3.0, -1.0, -0.2, 0.0, 0.4, 1.0, 1.9, 2.5]]).view(1, 1, 1, 8).repeat(1, 3, 1, 1)
    x.requires_grad_()
    s = poisson_signed(x, 4000, torch.tensor([0]))
    assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0}
    expected = torch.sign(x) * (x.abs() / 2).clamp(max=1)  # P(spike) = min(|x|/2, 1), signed
    assert torch.allclose(s.mean(0), expected.detach(), atol=0.03)
    (g,) = torch.autograd.grad(s.sum(), x)  # d spikes/dx := d E[spikes]/dx = 0.5 inside |x| < 2
    assert torch.allclose(g[0, 0, 0], 4000 * torch.tensor([0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0]))


def test_plain_poisson_codes_intensities():
    p = torch.tensor([0.0, 0.25, 1.0, 1.5]).view(1, 1, 1, 4)
    s = poisson(p, 4000, torch.tensor([3]))
    assert torch.allclose(s.mean(0).flatten(), torch.tensor([0.0, 0.25, 1.0, 1.0]), atol=0.03)


def test_direct_coding_computes_first_conv_once():
    m = build_model("vgg5_snn_t8").eval()
    seen = []
    h = m.convs[0].register_forward_hook(lambda mod, i, o: seen.append(i[0].shape[0]))
    try:
        m(_x(2))
    finally:
        h.remove()
    assert seen == [2]  # B, not T*B
    seen.clear()
    p = build_model("vgg5_snn_t8_poisson").eval()
    h = p.convs[0].register_forward_hook(lambda mod, i, o: seen.append(i[0].shape[0]))
    try:
        p(_x(2), sample_id=torch.tensor([0, 1]))
    finally:
        h.remove()
    assert seen == [16]  # Poisson spikes differ per step: T*B


@pytest.mark.parametrize("name", ["vgg5_snn_t8", "vgg5_snn_t8_poisson", "vgg5_snn_t8_if", "vgg5_ann"])
def test_input_gradients_nonzero_in_eval_mode(name):
    m = build_model(name).eval()
    x = _x(2, 32).requires_grad_()
    out = m(x, sample_id=torch.tensor([0, 1]))
    (g,) = torch.autograd.grad(out[:, 0].sum(), x)
    assert g.abs().sum() > 0 and torch.isfinite(g).all()
    assert (g[0].abs().sum() > 0) and (g[1].abs().sum() > 0)
