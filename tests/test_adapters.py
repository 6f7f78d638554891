"""Bring your own SNN (bench.adapters): snnTorch, SpikingJelly and plain torch models behind the
model protocol, with known answers (SAM and Grad-CAM from the user's own loop), reset proofs, the
suite/CLI path and its one-line errors."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import re
import textwrap
from pathlib import Path

import foreign_vgg5
import pytest
import torch
from basic_models import SNNTORCH_USER_FILE, make_fire
from torch import nn

from bench.adapters import UserModelSpec, adapt
from bench.cli import main as cli_main
from bench.errors import BenchError
from bench.models.record import record
from methods.base import ExplainInput
from methods.sam import SamParams, sam, spike_activation_map
from methods.snn_gradcam import SnnGradCamParams, snn_gradcam

snn = pytest.importorskip("snntorch")
snn_utils = pytest.importorskip("snntorch.utils")

ROOT = Path(__file__).resolve().parents[1]
T, C, K, S = 4, 3, 10, 16          # steps, channels, classes, image size
STATS = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


class LoopNet(nn.Module):
    """snnTorch's explicit style: ``forward(x_seq [T, B, C, H, W]) -> (spikes, mem) [T, B, K]``.
    ``keep_state``: pass ``mem=None`` (the module's stored state) instead of ``init_leaky()``."""

    def __init__(self, seed: int = 0, keep_state: bool = False):
        super().__init__()
        g = torch.random.fork_rng(devices=[])
        with g:
            torch.manual_seed(seed)
            self.conv1, self.lif1 = nn.Conv2d(C, 6, 3, padding=1), snn.Leaky(beta=0.8, threshold=0.5)
            self.fc, self.lif2 = nn.Linear(6 * 4 * 4, K), snn.Leaky(beta=0.9)
        self.keep_state = keep_state

    def step(self, x, mem1, mem2):
        spk1, mem1 = self.lif1(self.conv1(x), mem1)
        spk2, mem2 = self.lif2(self.fc(nn.functional.adaptive_avg_pool2d(spk1, 4).flatten(1)), mem2)
        return spk1, spk2, mem1, mem2

    def forward(self, x_seq):
        mem1 = mem2 = None
        if not self.keep_state:
            mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        out, mems = [], []
        for x in x_seq:
            _, spk2, mem1, mem2 = self.step(x, mem1, mem2)
            out.append(spk2)
            mems.append(mem2)
        return torch.stack(out), torch.stack(mems)


class HiddenNet(nn.Module):
    """snnTorch's ``init_hidden=True`` style: ``forward(x [B, C, H, W]) -> mem [B, K]`` for one step."""

    def __init__(self, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.conv1 = nn.Conv2d(C, 6, 3, padding=1)
            self.lif1 = snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True)
            self.fc = nn.Linear(6 * 4 * 4, K)
            self.lif2 = snn.Leaky(beta=0.9, init_hidden=True, output=True)

    def forward(self, x):
        s1 = self.lif1(self.conv1(x))
        return self.lif2(self.fc(nn.functional.adaptive_avg_pool2d(s1, 4).flatten(1)))[1]


def _adapt(net, **spec):
    spec = UserModelSpec(**{"source": "test.py:net", "T": T, **spec})
    return adapt(net, spec, name="net", dataset="shapes", num_classes=K, channels=C, size=S, input_stats=STATS)


def _x(b: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.randn(b, C, S, S, generator=torch.Generator().manual_seed(seed)) * 2


def _inp(model, x, layer="lif1"):
    return ExplainInput(model=model, card=model.card, layer=layer, x=x, target=torch.arange(x.shape[0]) % K,
                        sample_id=torch.arange(x.shape[0]), seed=0)


def _hand_spikes(net: LoopNet, x: torch.Tensor, retain: bool = False):
    """The user's own loop, recording lif1's spikes per step: ``[T, B, 6, S, S]`` and logits."""
    mem1, mem2 = net.lif1.init_leaky(), net.lif2.init_leaky()
    spikes, outs = [], []
    for _ in range(T):
        spk1, spk2, mem1, mem2 = net.step(x, mem1, mem2)
        if retain:
            spk1.retain_grad()
        spikes.append(spk1)
        outs.append(spk2)
    return spikes, torch.stack(outs).mean(0)


def test_card_lists_what_the_adapter_finds():
    m = _adapt(LoopNet())
    assert m.layer_names() == ["lif1", "lif2"] and m.card.T == T and m.card.kind == "snn"
    assert m.card.default_layer == "lif1"  # the last layer with a spatial map
    lif1 = dict(m.card.layers[0].params)
    assert lif1["type"] == "Leaky" and lif1["threshold"] == 0.5 and lif1["beta"] == pytest.approx(0.8)
    assert m.card.layers[0].shape == (6, S, S) and m.card.layers[1].shape == (K,)
    assert m.card.n_params == sum(p.numel() for p in LoopNet().parameters()) == 6 * C * 9 + 6 + 96 * K + K


def test_sam_equals_sam_of_the_users_own_spikes():
    net, x = LoopNet(), _x()
    model = _adapt(net)
    with torch.no_grad():
        spikes, logits = _hand_spikes(net, x)
        assert torch.equal(model(x, sample_id=torch.arange(3)), logits)
    want = spike_activation_map(torch.stack(spikes), 0.5, "inclusive")
    got = sam(_inp(model, x), SamParams(layer="lif1"))
    assert want.abs().sum() > 0 and torch.equal(got, want)


def test_snn_gradcam_gradients_equal_the_users_own_bptt():
    net, x = LoopNet(), _x()
    model = _adapt(net)
    with record(model, ["lif1"], grad=True) as rec:
        score = model(x, sample_id=torch.arange(3))[torch.arange(3), torch.arange(3) % K].sum()
        (g,) = torch.autograd.grad(score, rec.spikes["lif1"])
    spikes, logits = _hand_spikes(net, x, retain=True)
    logits[torch.arange(3), torch.arange(3) % K].sum().backward()
    want = torch.stack([s.grad for s in spikes])
    assert want.abs().sum() > 0 and torch.allclose(g, want, atol=1e-6)
    maps = snn_gradcam(_inp(model, x), SnnGradCamParams(layer="lif1"))
    assert maps.shape == (T, 3, S, S)


def test_init_hidden_style_step_calls_and_membrane_readout():
    net, x = HiddenNet(), _x()
    model = _adapt(net, call="step")
    assert model.modes == {"lif1": "step", "lif2": "step"}
    snn_utils.reset(net)
    want = torch.stack([net(x) for _ in range(T)]).mean(0)  # the user's own loop
    with torch.no_grad(), record(model, ["lif1"], mem=True) as rec:
        got = model(x)
    assert torch.allclose(got, want) and rec.mem["lif1"].shape == (T, 3, 6, S, S)


def test_reset_two_calls_and_two_models_alternately():
    x = _x()
    a, b = _adapt(HiddenNet(0), call="step"), _adapt(HiddenNet(1), call="step")
    with torch.no_grad():
        a1, b1, a2, b2 = a(x), b(x), a(x), b(x)
        b_alone = _adapt(HiddenNet(1), call="step")(x)
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and torch.equal(b1, b_alone)
    assert not torch.equal(a1, b1)
    # a batch of another size in between (the stored state's shape changes) changes nothing
    with torch.no_grad():
        a(_x(5, seed=2))
        assert torch.equal(a(x), a1)


def test_state_kept_by_the_module_is_reset_by_the_adapter():
    """``mem=None`` reuses the Leaky's stored state: the raw module drifts, the adapted one does not."""
    net, x = LoopNet(keep_state=True), _x()
    with torch.no_grad():
        seq = x.unsqueeze(0).expand(T, *x.shape)
        assert not torch.equal(net(seq)[0], net(seq)[0])
        model = _adapt(net)
        assert torch.equal(model(x), model(x))


def test_rate_encoding_is_keyed_per_sample():
    model = _adapt(LoopNet(), encoding="rate", output=1)  # the membrane readout: never all zero
    x = _x(4)
    with torch.no_grad():
        full = model(x, sample_id=torch.tensor([7, 8, 9, 10]), seed=3)
        one = model(x[2:3], sample_id=torch.tensor([9]), seed=3)
        other = model(x[2:3], sample_id=torch.tensor([9]), seed=4)
    assert torch.allclose(full[2:3], one, atol=1e-6) and (one - other).abs().max() > 1e-3


class Heaviside(nn.Module):
    """A multi-step IF neuron of a plain model: ``[T, B, ...] -> spikes [T, B, ...]`` (straight-through)."""

    def forward(self, z):
        u, out = torch.zeros_like(z[0]), []
        for zt in z:
            u = u + zt
            s = (u > 1).float()
            out.append(s + zt - zt.detach())
            u = u - s
        return torch.stack(out)


class PlainNet(nn.Module):
    def __init__(self, stateful: bool = False):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.conv, self.act, self.fc = nn.Conv2d(C, 4, 3, padding=1), Heaviside(), nn.Linear(4, K)
        self.stateful, self.calls = stateful, 0

    def forward(self, x_seq):  # [T, B, C, H, W] -> [T, B, K]
        z = self.conv(x_seq.flatten(0, 1)).view(*x_seq.shape[:2], 4, S, S)
        self.calls += 1
        s = self.act(z * (self.calls if self.stateful else 1))
        return self.fc(s.mean((3, 4)))


def test_plain_model_multistep_layer():
    net, x = PlainNet(), _x()
    model = _adapt(net, adapter="plain", layers=("act",))
    assert model.modes == {"act": "multi"} and model.card.default_layer == "act"
    with torch.no_grad():
        seq = x.unsqueeze(0).expand(T, *x.shape)
        want = spike_activation_map(net.act(net.conv(seq.flatten(0, 1)).view(T, 3, 4, S, S)))
    assert torch.equal(sam(_inp(model, x, "act"), SamParams(layer="act")), want)
    assert snn_gradcam(_inp(model, x, "act"), SnnGradCamParams(layer="act")).shape == (T, 3, S, S)


@pytest.mark.parametrize("net, spec, message", [
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(C * S * S, K)), {}, "finds no spiking layer"),
    (LoopNet, {"layers": ("lif3",)}, "no module 'lif3'; did you mean 'lif2' or 'lif1'?"),
    (LoopNet, {"layers": ("conv1",)}, "not a snntorch spiking neuron"),
    (lambda: PlainNet(stateful=True), {"adapter": "plain", "layers": ("act",)}, "keeps state between calls"),
    (PlainNet, {"adapter": "plain"}, "name them with layers"),
])
def test_bad_models_are_one_line_errors(net, spec, message):
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace("?", r"\?")):
        _adapt(net(), **spec)


USER_FILE = SNNTORCH_USER_FILE

SUITE = """
[run]
n_samples = 4
batch_size = 4
examples = 1
[data]
dataset = "shapes"
[data.params]
image_size = 16
[models.vgg5_free]
adapter = "snntorch"
source = "{src}:build"
T = 3
[methods.sam]
[methods.snn_gradcam]
[metrics.pointing_game]
[report]
n_boot = 10
"""


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_net.py"
    path.write_text(textwrap.dedent(USER_FILE))
    import importlib.util
    spec = importlib.util.spec_from_file_location("_t_my_net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.build().state_dict(), tmp_path / "my_net.pt")
    torch.save(mod.build_wide().state_dict(), tmp_path / "wide.pt")
    return path


def test_suite_with_a_user_model_end_to_end(user_file: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "mine.toml"
    suite.write_text(SUITE.format(src=user_file))
    assert cli_main(["run", str(suite), "--out", str(tmp_path / "run"), "--quiet", "--no-report"]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    card = run["versions"]["models"]["vgg5_free"]
    assert card["arch"] == "snntorch" and card["T"] == 3 and card["target_layers"] == ["lif1", "lif2"]
    assert card["n_params"] == 4 * 3 * 9 + 4 + 64 * 10 + 10
    rows = (tmp_path / "run" / "results.csv").read_text().splitlines()
    header = rows[0].split(",")
    cells = {(r.split(",")[header.index("model")], r.split(",")[header.index("method")]) for r in rows[1:]}
    assert {("vgg5_free", "sam"), ("vgg5_free", "snn_gradcam")} <= cells


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    rc = cli_main(args)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("model, extra, message", [
    ("missing.py:build", [], "model source 'missing.py' not found"),
    ("{f}:nope", [], "has no function 'nope' (functions: Net, build, build_wide)"),
    ("{f}:build", ["--checkpoint", "{d}/wide.pt"], "does not fit the model"),
    ("{f}:build", ["--checkpoint", "{d}/absent.pt"], "checkpoint '{d}/absent.pt' not found"),
    ("{f}:build", ["--model-param", 'layers=["lif9"]'], "no module 'lif9'"),
    ("{f}:build", ["--model-param", "T=0"], "T must be >= 1"),
])
def test_cli_errors_exit_2_with_one_line(model, extra, message, user_file, tmp_path, capsys):
    d = str(tmp_path)
    args = ["run", "smoke", "--model", model.format(f=user_file), *[e.format(d=d) for e in extra],
            "--out", str(tmp_path / "run"), "--quiet"]
    rc, err = _run_cli(args, capsys)
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message.format(d=d) in err


def test_cli_checkpoint_loads_and_explain_draws(user_file: Path, tmp_path: Path, capsys):
    rc, err = _run_cli(["explain", "--model", f"{user_file}:build", "--checkpoint", str(tmp_path / "my_net.pt"),
                        "--model-param", "T=2", "--data", "shapes",
                        "--sample", "0", "--out", str(tmp_path / "fig.png")], capsys)
    assert rc == 0, err
    assert (tmp_path / "fig.png").stat().st_size > 0


@pytest.mark.parametrize("fn, call", [("build", "sequence"), ("build_hidden", "step")])
def test_the_shipped_example_adapts_in_both_snntorch_styles(fn, call):
    from bench.adapters import load_user_model
    from bench.data import get_dataset

    spec = UserModelSpec(source=f"{ROOT / 'examples' / 'snntorch_net.py'}:{fn}", T=2, call=call)
    model, prov = load_user_model("snntorch_net", spec, get_dataset("shapes", "test"), "shapes")
    assert model.layer_names() == ["lif1", "lif2", "lif3"] and model.card.default_layer == "lif2"
    assert prov.source == "user" and prov.sha256 == model.card.weights_sha256
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


# -- SpikingJelly, and the same vgg5 in three libraries ----------------------------------------
def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


needs_sj = pytest.mark.skipif(not _importable("spikingjelly.activation_based.functional"),
                              reason="spikingjelly is not installed (pip install 'snn-xai-bench[adapters]')")
SN = ["sn1", "sn2", "sn3", "sn4"]


@functools.cache
def _shapes16(n: int = 3) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """The first ``n`` shapes test samples at 16x16: normalized images ``[n, 3, 16, 16]``, labels, (mean, std)."""
    from bench.data import get_dataset

    ds = get_dataset("shapes", "test", {"image_size": 16})
    mean, std = torch.tensor(ds.mean).view(-1, 1, 1), torch.tensor(ds.std).view(-1, 1, 1)
    x = torch.stack([(ds[i].image - mean) / std for i in range(n)])
    return x, torch.tensor([ds[i].label for i in range(n)]), (tuple(ds.mean), tuple(ds.std))


@functools.cache
def _our_vgg5(neuron: str):
    """Our vgg5 SNN of foreign_vgg5's card, seed 0, weights x4 so that all four layers spike."""
    from bench.models import build_model

    return make_fire(build_model(foreign_vgg5.card(neuron)).eval(), 4.0)


def _adapt_foreign(net: nn.Module, adapter: str, call: str, stats: tuple):
    spec = UserModelSpec(adapter=adapter, source="foreign_vgg5.py:net", T=foreign_vgg5.T, call=call)
    return adapt(net, spec, name="foreign", dataset="shapes", num_classes=K, channels=C, size=S, input_stats=stats)


def _explain(model, layer: str, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inp = ExplainInput(model=model, card=model.card, layer=layer, x=x, target=y, sample_id=torch.arange(len(x)), seed=0)
    return sam(inp, SamParams(layer=layer)), snn_gradcam(inp, SnnGradCamParams(layer=layer))


@needs_sj
@pytest.mark.parametrize("neuron", ["if", "lif"])
def test_the_same_vgg5_in_snntorch_and_spikingjelly_equals_ours(neuron):
    """Weights copied from our vgg5: every layer's spikes, the logits and SAM are bitwise ours, in
    snnTorch (explicit loop), SpikingJelly multi-step and SpikingJelly single-step. SNN Grad-CAM
    too where the library detaches the reset as we do (snnTorch's undelayed zero reset does not)."""
    x, y, stats = _shapes16()
    ours = _our_vgg5(neuron)
    with torch.no_grad(), record(ours, ["conv1", "conv2", "conv3", "conv4"]) as rec:
        want = ours(x)
    rates = [float(rec.spikes[f"conv{i}"].mean()) for i in range(1, 5)]
    assert all(0.005 < r < 0.5 for r in rates), rates  # every layer spikes: the comparison means something
    want_sam, want_gc = _explain(ours, "conv3", x, y)
    foreign = {"snntorch": (foreign_vgg5.SnnTorchVGG5(neuron), "sequence"),
               "spikingjelly": (foreign_vgg5.JellyVGG5(neuron, "m"), "sequence"),
               "spikingjelly_s": (foreign_vgg5.JellyVGG5(neuron, "s"), "step")}
    for lib, (net, call) in foreign.items():
        model = _adapt_foreign(foreign_vgg5.copy_weights(ours, net), lib.removesuffix("_s"), call, stats)
        assert model.layer_names() == SN and model.card.default_layer == "sn4"  # the last spatial layer
        with torch.no_grad(), record(model, SN) as got:
            logits = model(x)
        assert torch.equal(logits, want), lib
        for i, name in enumerate(SN, 1):  # [T, B, C, H, W] each
            assert torch.equal(got.spikes[name], rec.spikes[f"conv{i}"]), (lib, name)
        got_sam, got_gc = _explain(model, "sn3", x, y)
        assert torch.equal(got_sam, want_sam), lib
        if not (lib == "snntorch" and neuron == "lif"):
            assert torch.allclose(got_gc, want_gc, atol=1e-7), lib


@needs_sj
@pytest.mark.parametrize("step_mode, call", [("m", "sequence"), ("s", "step")])
def test_spikingjelly_reset_before_every_call(step_mode, call):
    """The raw module keeps ``v`` between calls (its output drifts); adapted, two calls on the same
    input are equal, also with another model and another batch size in between."""
    from spikingjelly.activation_based import functional

    x, _, stats = _shapes16()
    net = foreign_vgg5.copy_weights(_our_vgg5("if"), foreign_vgg5.JellyVGG5("if", step_mode))
    with torch.no_grad():
        seq = x.unsqueeze(0).expand(foreign_vgg5.T, *x.shape)
        raw = [net(seq) if step_mode == "m" else torch.stack([net(xt) for xt in seq]) for _ in range(2)]
        functional.reset_net(net)
        assert not torch.equal(raw[0], raw[1])
        a = _adapt_foreign(net, "spikingjelly", call, stats)
        b = _adapt_foreign(foreign_vgg5.JellyVGG5("if", step_mode), "spikingjelly", call, stats)
        first = a(x)
        b(x[:2])
        a(_x(5, seed=2))
        assert torch.equal(a(x), first) and torch.equal(first, raw[0].mean(0))


@needs_sj
def test_spikingjelly_card_and_membrane():
    _, _, stats = _shapes16()
    model = _adapt_foreign(foreign_vgg5.JellyVGG5("lif", "s"), "spikingjelly", "step", stats)
    assert model.modes == dict.fromkeys(SN, "step") and model.card.arch == "spikingjelly"
    p = dict(model.card.layers[0].params)
    assert p == {"type": "LIFNode", "step_mode": "s", "tau": 2.0, "threshold": 1.0, "decay_input": False,
                 "detach_reset": True, "reset": "to 0.0", "surrogate": "ATan", "surrogate_alpha": 2.0}
    assert model.card.layers[1].shape == (32, 8, 8) and model.card.layers[3].shape == (64, 2, 2)
    with torch.no_grad(), record(model, ["sn1"], mem=True) as rec:
        model(_x(2))
    s, v = rec.spikes["sn1"], rec.mem["sn1"]
    assert v.shape == s.shape == (T, 2, 16, S, S) and torch.all(v[s > 0] == 0)  # reset to zero where it spiked
    multi = _adapt_foreign(foreign_vgg5.JellyVGG5("if", "m"), "spikingjelly", "sequence", stats)
    assert multi.modes == dict.fromkeys(SN, "multi") and dict(multi.card.layers[0].params)["reset"] == "subtract"


@needs_sj
@pytest.mark.parametrize("net, spec, message", [
    (lambda: foreign_vgg5.JellyVGG5("if", "m"), {"call": "step"},
     "neuron 'sn1' is in step_mode 'm' (it would read the batch as time)"),
    (lambda: foreign_vgg5.JellyVGG5("if", "m"), {"layers": ("conv2",)}, "'conv2' is a Conv2d, not a spikingjelly"),
    (lambda: foreign_vgg5.JellyVGG5("if", "m"), {"layers": ("sn5",)}, "no module 'sn5'"),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(C * S * S, K)), {}, "finds no spiking layer"),
])
def test_spikingjelly_bad_models_are_one_line_errors(net, spec, message):
    with pytest.raises(BenchError, match=re.escape(message)):
        _adapt(net(), adapter="spikingjelly", **spec)


@needs_sj
def test_spikingjelly_named_layers_and_gradcam_on_a_multistep_layer():
    x, y, stats = _shapes16()
    net = foreign_vgg5.copy_weights(_our_vgg5("if"), foreign_vgg5.JellyVGG5("if", "m"))
    spec = UserModelSpec(adapter="spikingjelly", source="foreign_vgg5.py:net", T=T, layers=("sn2",))
    model = adapt(net, spec, name="foreign", dataset="shapes", num_classes=K, channels=C, size=S, input_stats=stats)
    assert model.layer_names() == ["sn2"] and model.card.default_layer == "sn2"
    _, want = _explain(_our_vgg5("if"), "conv2", x, y)
    assert torch.allclose(_explain(model, "sn2", x, y)[1], want, atol=1e-7)


@needs_sj
@pytest.mark.parametrize("fn, call, mode", [("build", "sequence", "multi"), ("build_single", "step", "step")])
def test_the_shipped_spikingjelly_example_adapts_in_both_step_modes(fn, call, mode):
    from bench.adapters import load_user_model
    from bench.data import get_dataset

    spec = UserModelSpec(adapter="spikingjelly", source=f"{ROOT / 'examples' / 'spikingjelly_net.py'}:{fn}",
                         T=2, call=call)
    model, _ = load_user_model("spikingjelly_net", spec, get_dataset("shapes", "test"), "shapes")
    assert model.layer_names() == ["features.1", "features.4"] and model.card.default_layer == "features.4"
    assert model.modes == {"features.1": mode, "features.4": mode}
    with torch.no_grad():
        x = _x(2).repeat(1, 1, 2, 2)  # [2, 3, 32, 32]
        assert model(x).shape == (2, 10) and torch.equal(model(x), model(x))


@needs_sj
def test_cli_runs_a_spikingjelly_model(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))
    suite = tmp_path / "mine.toml"
    suite.write_text(SUITE.format(src="unused.py"))  # --model replaces the suite's models
    rc, err = _run_cli(["run", str(suite), "--model", f"{foreign_vgg5.__file__}:jelly_if_single",
                        "--adapter", "spikingjelly", "--model-param", "call=step", "--model-param", "T=2",
                        "--out", str(tmp_path / "run"), "--quiet", "--no-report"], capsys)
    assert rc == 0, err
    # the file has several builders: the model is named by file and function
    card = json.loads((tmp_path / "run" / "run.json").read_text())["versions"]["models"]["foreign_vgg5_jelly_if_single"]
    assert card["arch"] == "spikingjelly" and card["spec"]["call"] == "step" and card["T"] == 2


#: cheap values for the parameters that set an explanation's or a metric's cost
CHEAP = {"steps": 1, "eot": 1, "epsilons": [0.0078125], "n_steps": 2, "max_stages": 1, "window": 8, "stride": 8}


def _every_entry_suite(adapter: str, builder: str, checkpoint: Path) -> str:
    """A suite of every registered method and metric (cheap settings) on foreign_vgg5's
    ``builder`` vgg5, 2 samples of 16x16 shapes. attack_success_transfer is left out: it attacks
    through the probed model's ANN twin (or a named ``source`` model), which an adapted model lacks."""
    from bench.registry import METHODS, METRICS

    lines = ["[run]", "n_samples = 2", "batch_size = 2", "examples = 0", "[data]", 'dataset = "shapes"',
             "[data.params]", "image_size = 16", "[models.foreign]", f'adapter = "{adapter}"',
             f'source = "{foreign_vgg5.__file__}:{builder}"', f'checkpoint = "{checkpoint}"', f"T = {foreign_vgg5.T}"]
    for reg in (METHODS, METRICS):
        for e in reg.entries():
            if e.name == "attack_success_transfer":
                continue
            lines.append(f"[{reg.kind}s.{e.name}]")
            fields = dataclasses.fields(e.params_cls) if e.params_cls else ()
            lines += [f"{f.name} = {json.dumps(CHEAP[f.name])}" for f in fields if f.name in CHEAP]
    return "\n".join([*lines, "[report]", "n_boot = 10", ""])


@pytest.mark.slow
@pytest.mark.parametrize("adapter, builder", [pytest.param("spikingjelly", "jelly_if", marks=needs_sj),
                                              ("snntorch", "snntorch_if")])
def test_every_method_runs_and_every_metric_scores_a_foreign_vgg5(adapter, builder, tmp_path: Path, monkeypatch):
    from bench.registry import METHODS, METRICS

    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))
    net = foreign_vgg5.copy_weights(_our_vgg5("if"), getattr(foreign_vgg5, builder)())
    torch.save(net.state_dict(), tmp_path / "net.pt")
    (tmp_path / "all.toml").write_text(_every_entry_suite(adapter, builder, tmp_path / "net.pt"))
    assert cli_main(["run", str(tmp_path / "all.toml"), "--out", str(tmp_path / "run"), "--quiet", "--no-report"]) == 0
    import pandas as pd

    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(rows.model) == {"foreign"}
    # ann_* methods need the ANN twin an adapted model does not have; spiking LRP needs layers
    # that run once per forward (SLTRP and RelCAM's default mode also the suite's own neurons):
    # skipped with a reason; the rest all ran
    lrp = {"sltrp", "relcam"} | ({"slrp"} if builder.startswith("snntorch") else set())
    assert set(rows.method.dropna()) == set(METHODS.names(model_kind=["snn", "any"])) - lrp
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {s["method"] for s in run["skipped_cells"] if "spiking" in s["reason"]} == lrp
    static = {e.name for e in METRICS.entries() if "step_mask" not in e.spec.needs} - {"attack_success_transfer"}
    assert set(rows.metric) == static  # per-step masks do not exist on static shapes
    scored = rows[rows.value.notna()]
    # success rates are over correctly classified samples, which random weights may not give
    assert set(scored.metric) >= static - {"attack_success_whitebox", "attack_success_noise"}
