"""TSA-S / TSA-NS / TSA's SAM against a literal transcription of the reference code
(github.com/ElisaNguyen/tsa-explanations, experiments/ExplanationCreation.py: spike_contribution,
tsa, sam; get_weight_contributions from the 2022-02 tsa/ExplanationCreation.py), on small fully
connected LIF networks where the chain is an explicit matrix product."""

from __future__ import annotations

import pytest
import torch
from basic_models import tiny_batch, tiny_vgg
from torch import nn

from bench.models.card import ModelCard, NeuronParams
from bench.models.encoders import poisson
from bench.models.layers import Spiking
from bench.models.record import record
from methods.base import ExplainInput
from methods.tsa import tsa_attributions

T, H, K, BETA = 6, 3, 3, 0.8


# -- the reference, transcribed (shapes as in the reference: weights [n_in, n_out]) ----------------
def ref_spike_contribution(spike_times, tc, beta, t, variant, layer_size=None):
    diff_t = torch.abs(tc - spike_times)
    score = beta ** diff_t
    if len(score) == 0:
        if variant == "s":
            score = torch.tensor([0])
        elif variant == "ns":
            score = torch.Tensor([(-1 / layer_size) * (beta ** (tc - t))])
    return score


def ref_get_weight_contributions(ws):
    abs_ws = [torch.abs(w) for w in ws]
    w_contributions = []
    for w_a, w in zip(abs_ws, ws):
        min_w = torch.min(w_a)
        max_w = torch.max(w_a)
        w_norm = (w_a - min_w) / (max_w - min_w)
        w_contributions.append(w.sign() * w_norm)
    return w_contributions


def ref_tsa(layers_spk, w_contributions, probs, tc, beta, variant):
    """layers_spk: [input, hidden...] spike rasters [T, n_l] (0/1); returns e [K, n_in, tc]."""
    tsa_map = []
    for t in range(0, tc):
        layers_w_spk_contr_t = []
        for l, spk in enumerate(layers_spk):
            n_l = spk.shape[1]
            contr = []
            for i in range(n_l):
                times = torch.nonzero(spk[:, i]).flatten().float()
                contr.append(ref_spike_contribution(times[times == t], tc, beta, t, variant, layer_size=n_l))
            diag = torch.diag(torch.stack(contr).reshape(-1)).float()
            layers_w_spk_contr_t.append(diag @ w_contributions[l])
        w_spk_contr_t = layers_w_spk_contr_t[0]
        for m in layers_w_spk_contr_t[1:]:
            w_spk_contr_t = w_spk_contr_t @ m
        tsa_map.append(w_spk_contr_t @ torch.diag(probs))
    return torch.stack(tsa_map).transpose(0, 2)


# -- a fully connected LIF net in the suite's model protocol ---------------------------------------
class FcSnn(nn.Module):
    """``x [B, 1, H, H]`` in [0, 1] -> Poisson spikes -> fc1, fc2 (LIF, leak BETA) -> head,
    logits averaged over T. ``spikes``: a fixed input raster ``[T, B, H*H]`` used instead of
    the Poisson draw. ``hidden_bias``: a bias on fc1 (a large one makes fc1 fire every step)."""

    def __init__(self, hidden: tuple[int, ...] = (7, 5), seed: int = 0, hidden_bias: float = 0.0,
                 spikes: torch.Tensor | None = None):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        neuron = NeuronParams(leak=BETA, threshold=1.0)
        self.T = T
        self.card = ModelCard(name="fc_snn", kind="snn", arch="fc", dataset="none", num_classes=K,
                              input_size=H, in_channels=1, T=T, encoding="poisson", neuron=neuron,
                              bn="none", target_layers=tuple(f"fc{i + 1}" for i in range(len(hidden))))
        sizes = (H * H, *hidden)
        self.fcs = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.acts = nn.ModuleDict({f"fc{i + 1}": Spiking(T, neuron) for i in range(len(hidden))})
        self.head = nn.Linear(sizes[-1], K, bias=False)
        with torch.no_grad():
            for fc in [*self.fcs, self.head]:
                fc.weight.copy_(torch.randn(fc.weight.shape, generator=g) * 1.5)
        self.hidden_bias = hidden_bias
        self.spikes = spikes

    def layer_names(self) -> list[str]:
        return list(self.acts)

    def input_spikes(self, x, sample_id, seed):
        if self.spikes is not None:
            return self.spikes
        return poisson(x, T, sample_id, seed).flatten(2)  # [T, B, H*H]

    def forward(self, x, sample_id=None, seed=0):
        B = x.shape[0]
        h = self.input_spikes(x, sample_id, seed).flatten(0, 1)
        for i, (fc, act) in enumerate(zip(self.fcs, self.acts.values())):
            z = fc(h)
            h = act(z + self.hidden_bias if i == 0 else z)
        return self.head(h).view(T, B, -1).mean(0)


def _inp(model, n=2, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, H, H, generator=g)
    return ExplainInput(model, model.card, "fc1", x, torch.arange(n) % K, torch.arange(10, 10 + n), 0)


def _reference_for(model, inp, tc, variant, weights):
    with torch.no_grad(), record(model, model.layer_names()) as rec:
        probs = model(inp.x, sample_id=inp.sample_id, seed=inp.seed).softmax(1)
    inp_spk = model.input_spikes(inp.x, inp.sample_id, inp.seed)
    ws = [fc.weight.detach().T for fc in [*model.fcs, model.head]]
    wc = {"minmax": ref_get_weight_contributions(ws), "raw": ws,
          "ones": [torch.ones(w.shape) for w in ws]}[weights]
    out = torch.zeros(T, *inp_spk.shape[1:])
    for b in range(inp.x.shape[0]):
        layers = [inp_spk[:, b]] + [rec.spikes[n][:, b] for n in model.layer_names()]
        e = ref_tsa(layers, wc, probs[b], tc, BETA, variant)
        out[:tc, b] = e[int(inp.target[b])].T
    return out


@pytest.mark.parametrize("variant", ["s", "ns"])
@pytest.mark.parametrize("weights", ["minmax", "raw"])
@pytest.mark.parametrize("tc", [T, T - 2])
def test_tsa_equals_reference_matrix_product(variant: str, weights: str, tc: int) -> None:
    model = FcSnn()
    inp = _inp(model)
    with torch.no_grad(), record(model, ["fc1", "fc2"]) as rec:
        model(inp.x, sample_id=inp.sample_id, seed=0)
    assert 0 < rec.spikes["fc2"].mean() < 1, "the hidden layers must spike (and not always)"
    got = tsa_attributions(inp, weights=weights, absent=variant == "ns", beta=None, tc=tc)
    want = _reference_for(model, inp, tc, variant, weights)
    assert want.abs().max() > 0
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_all_ones_weights_equal_tsa_repo_sam() -> None:
    model = FcSnn()
    inp = _inp(model)
    got = tsa_attributions(inp, weights="ones", absent=False, beta=None, tc=None)
    torch.testing.assert_close(got, _reference_for(model, inp, T, "s", "ones"), rtol=1e-4, atol=1e-6)


def test_ns_minus_s_is_zero_wherever_an_input_spike_occurred() -> None:
    # fc1 fires at every step (large bias) and fc2 is its only downstream layer with absent
    # spikes... so use one hidden layer: then the hidden layer has no absent spikes and NS - S
    # comes from the input layer's absent term alone.
    model = FcSnn(hidden=(6,), hidden_bias=50.0)
    inp = _inp(model)
    with torch.no_grad(), record(model, ["fc1"]) as rec:
        model(inp.x, sample_id=inp.sample_id, seed=0)
    assert rec.spikes["fc1"].min() == 1
    s = tsa_attributions(inp, weights="minmax", absent=False, beta=None, tc=None)
    ns = tsa_attributions(inp, weights="minmax", absent=True, beta=None, tc=None)
    spikes = model.input_spikes(inp.x, inp.sample_id, 0)
    diff = ns - s
    assert torch.all(diff[spikes == 1] == 0)
    assert diff[spikes == 0].abs().max() > 0


def test_single_input_spike_gives_decayed_weight_times_p() -> None:
    t0, i0, target = 2, 4, 1
    raster = torch.zeros(T, 1, H * H)
    raster[t0, 0, i0] = 1
    model = FcSnn(hidden=(), spikes=raster)
    model.acts = nn.ModuleDict()  # one weight layer: input -> output, A(t) = diag(N0) W~ diag(p)
    inp = _inp(model, n=1)
    inp = ExplainInput(model, model.card, "fc1", inp.x, torch.tensor([target]), inp.sample_id, 0)
    got = tsa_attributions(inp, weights="minmax", absent=False, beta=BETA, tc=None)
    p = model(inp.x).softmax(1)[0, target]
    w = model.head.weight.detach()
    wt = w.sign() * (w.abs() - w.abs().min()) / (w.abs().max() - w.abs().min())
    want = torch.zeros(T, 1, H * H)
    want[t0, 0, i0] = BETA ** (T - t0) * wt[target, i0] * p
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def _direct_vgg():
    """The tiny vgg5 with direct coding: one analog input that the first conv sees once."""
    import dataclasses

    from basic_models import make_fire, tiny_card

    from bench.models.arch import VGG

    torch.manual_seed(0)
    return make_fire(VGG(dataclasses.replace(tiny_card("snn"), encoding="direct")).eval(), 4)


@pytest.mark.parametrize("coding", ["poisson_signed", "direct"])
@pytest.mark.parametrize("name", ["tsa_s", "tsa_ns", "sam_tsa"])
def test_conv_model_maps_are_finite_and_zero_from_tc_on(name: str, coding: str) -> None:
    from bench.registry import METHODS

    model, b = (tiny_vgg("snn") if coding == "poisson_signed" else _direct_vgg()), tiny_batch(2)
    inp = ExplainInput(model, model.card, "conv3", b.x, b.y, b.sample_id, 3)
    entry = METHODS.get(name)
    maps = entry.obj(inp, entry.make_params({"tc": 2}))
    assert maps.shape == (model.T, 2, b.x.shape[-2], b.x.shape[-1]) and torch.isfinite(maps).all()
    assert maps[:2].abs().sum() > 0 and torch.all(maps[2:] == 0)

