"""A user model's record is what the project knows (issue 27, item 3): no training recipe
that never ran, its neurons (PLIF tau included) and BatchNorm layers as the module has them,
the file, function and checkpoint digest; names unique per (file, function); the errors for a
wrong ``call`` or adapter name the value that works (found by trying); ``input = "pixels"``."""

from __future__ import annotations

import hashlib
import json
import math
import textwrap
from pathlib import Path

import pytest
import torch

from bench.adapters import UserModelSpec, adapt, default_name, load_user_model
from bench.cli import main as cli_main
from bench.config import to_plain
from bench.data import get_dataset
from bench.errors import BenchError

snn = pytest.importorskip("snntorch")

ROOT = Path(__file__).resolve().parents[1]
STATS = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))

SNNTORCH_BN = """
import torch
import snntorch as snn
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.lif1 = snn.Leaky(beta=0.7, threshold=0.5, learn_beta=True)
        self.fc, self.lif2 = nn.Linear(4 * 4 * 4, 10), snn.Synaptic(alpha=0.6, beta=0.8)

    def forward(self, x_seq):
        mem1 = self.lif1.init_leaky()
        syn2, mem2 = self.lif2.init_synaptic()
        out = []
        for x in x_seq:
            s1, mem1 = self.lif1(self.bn1(self.conv1(x)), mem1)
            s2, syn2, mem2 = self.lif2(self.fc(nn.functional.adaptive_avg_pool2d(s1, 4).flatten(1)), syn2, mem2)
            out.append(mem2)
        return torch.stack(out)


def build():
    return Net()


def build_other():
    return Net()
"""

SUITE = """
[run]
n_samples = 2
batch_size = 2
examples = 1
[data]
dataset = "shapes"
[data.params]
image_size = 16
[models.mine]
adapter = "snntorch"
source = "{src}:build"
checkpoint = "{ckpt}"
T = 2
[methods.sam]
[metrics.pointing_game]
[report]
n_boot = 10
"""


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "bn_net.py"
    path.write_text(textwrap.dedent(SNNTORCH_BN))
    ns: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    torch.save(ns["build"]().state_dict(), tmp_path / "bn_net.pt")
    return path


def test_run_json_holds_no_train_block_and_the_modules_neurons_and_bn(user_file: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))
    ckpt = tmp_path / "bn_net.pt"
    suite = tmp_path / "mine.toml"
    suite.write_text(SUITE.format(src=user_file, ckpt=ckpt))
    assert cli_main(["run", str(suite), "--out", str(tmp_path / "run"), "--quiet", "--no-report"]) == 0
    card = json.loads((tmp_path / "run" / "run.json").read_text())["versions"]["models"]["mine"]
    assert "train" not in card and card["source"] == "user"
    assert card["file"] == "bn_net.py" and card["function"] == "build"
    assert card["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert card["file_sha256"] == hashlib.sha256(user_file.read_bytes()).hexdigest()
    assert card["T"] == 2 and card["encoding"] == "direct" and card["input"] == "normalized"
    assert card["bn"] == "batchnorm"
    assert card["bn_layers"] == [{"name": "bn1", "type": "BatchNorm2d", "num_features": 4, "affine": True,
                                  "track_running_stats": True, "eps": 1e-5, "momentum": 0.1}]
    params = {layer["name"]: dict(layer["params"]) for layer in card["layers"]}
    assert params["lif1"]["type"] == "Leaky" and params["lif1"]["threshold"] == 0.5
    assert params["lif1"]["beta"] == pytest.approx(0.7)
    assert params["lif2"]["type"] == "Synaptic"
    assert params["lif2"]["alpha"] == pytest.approx(0.6) and params["lif2"]["beta"] == pytest.approx(0.8)


def test_the_shipped_snntorch_example_records_no_bn_and_its_betas():
    spec = UserModelSpec(source=f"{ROOT / 'examples' / 'snntorch_net.py'}:build", T=2)
    model, _ = load_user_model("snntorch_net", spec, get_dataset("shapes", "test"), "shapes")
    plain = to_plain(model.card)
    assert "train" not in plain and plain["source"] == "user" and plain["checkpoint_sha256"] == ""
    assert plain["bn"] == "none" and plain["bn_layers"] == []
    for layer in model.card.layers:
        p = dict(layer.params)
        assert p["type"] == "Leaky" and p["beta"] == pytest.approx(float(model.net.get_submodule(layer.name).beta))


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


needs_sj = pytest.mark.skipif(not _importable("spikingjelly"), reason="spikingjelly is not installed")


@needs_sj
def test_spikingjelly_records_plif_tau_and_batchnorm():
    from spikingjelly.activation_based import functional, layer, neuron
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(3, 4, 3, padding=1), layer.BatchNorm2d(4),
                        neuron.ParametricLIFNode(init_tau=3.0, v_reset=None),
                        layer.AdaptiveAvgPool2d(1), layer.Flatten(), layer.Linear(4, 10), neuron.LIFNode(tau=2.0))
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        net[2].w.add_(0.25)  # a "trained" w: tau is 1 / sigmoid(w), not init_tau
    spec = UserModelSpec(adapter="spikingjelly", source="sj.py:build", T=2)
    model = adapt(net, spec, name="sj", dataset="shapes", num_classes=10, channels=3, size=16, input_stats=STATS)
    plain = to_plain(model.card)
    assert "train" not in plain and plain["bn"] == "batchnorm"
    assert [(b["name"], b["type"], b["num_features"]) for b in plain["bn_layers"]] == [("1", "BatchNorm2d", 4)]
    params = {layer.name: dict(layer.params) for layer in model.card.layers}
    want = 1.0 / (1.0 / (1.0 + math.exp(-(-math.log(3.0 - 1.0) + 0.25))))
    assert params["2"]["type"] == "ParametricLIFNode" and params["2"]["tau"] == pytest.approx(want, rel=1e-6)
    assert params["2"]["tau"] == pytest.approx(float(1.0 / net[2].w.sigmoid()))
    assert params["6"]["type"] == "LIFNode" and params["6"]["tau"] == 2.0


@needs_sj
def test_the_shipped_spikingjelly_example_records_its_lif_taus():
    spec = UserModelSpec(adapter="spikingjelly", source=f"{ROOT / 'examples' / 'spikingjelly_net.py'}:build", T=2)
    model, _ = load_user_model("spikingjelly_net", spec, get_dataset("shapes", "test"), "shapes")
    plain = to_plain(model.card)
    assert "train" not in plain and plain["bn"] == "none" and plain["bn_layers"] == []
    for layer in model.card.layers:
        p = dict(layer.params)
        assert p["type"] == "LIFNode" and p["tau"] == float(model.net.get_submodule(layer.name).tau)


# -- the two errors name the fix ------------------------------------------------------------------
def test_init_hidden_model_with_call_sequence_suggests_call_step():
    spec = UserModelSpec(source=f"{ROOT / 'examples' / 'snntorch_net.py'}:build_hidden", T=2)
    with pytest.raises(BenchError, match=r"conv2d.*\(try --model-param call=step; call = \"step\" in a suite file\)"):
        load_user_model("x", spec, get_dataset("shapes", "test"), "shapes")


def test_no_call_style_works_gives_no_call_hint():
    from torch import nn

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = snn.Leaky(beta=0.5)

        def forward(self, x):
            raise RuntimeError("broken")

    spec = UserModelSpec(source="b.py:build", T=2)
    with pytest.raises(BenchError) as info:
        adapt(Broken(), spec, name="b", dataset="shapes", num_classes=10, channels=3, size=16, input_stats=STATS)
    assert "broken" in str(info.value) and "try --model-param" not in str(info.value)


@needs_sj
def test_snntorch_adapter_on_a_spikingjelly_model_suggests_the_spikingjelly_adapter():
    spec = UserModelSpec(source=f"{ROOT / 'examples' / 'spikingjelly_net.py'}:build", T=2)
    with pytest.raises(BenchError, match=r"the snntorch adapter finds no spiking layer in this model; the "
                                         r"spikingjelly adapter finds features\.1, features\.4 \(try --adapter "
                                         r"spikingjelly"):
        load_user_model("x", spec, get_dataset("shapes", "test"), "shapes")


def test_no_adapter_finds_a_layer_suggests_naming_them():
    from torch import nn

    spec = UserModelSpec(source="p.py:build", T=2)
    with pytest.raises(BenchError, match="no adapter finds one: name them with --adapter plain"):
        adapt(nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10)), spec, name="p", dataset="shapes",
              num_classes=10, channels=3, size=16, input_stats=STATS)


# -- names ----------------------------------------------------------------------------------------
def test_names_are_unique_per_file_and_function(tmp_path: Path):
    two = tmp_path / "net.py"
    two.write_text("def build_a():\n    pass\n\n\ndef build_b(width=4):\n    pass\n\n\n"
                   "def helper(x):\n    pass\n\n\nclass Net:\n    pass\n")
    names = {fn: default_name(f"{two}:{fn}") for fn in ("build_a", "build_b", "Net")}
    assert names == {"build_a": "net_build_a", "build_b": "net_build_b", "Net": "net_Net"}
    one = tmp_path / "solo.py"
    one.write_text("def helper(x):\n    pass\n\n\ndef make():\n    pass\n")
    assert default_name(f"{one}:make") == "solo"  # the file's only builder keeps the stem (today's name)
    # `build` keeps the stem next to other builders: the shipped examples' and suites' names stay
    assert default_name(f"{ROOT / 'examples' / 'snntorch_net.py'}:build") == "snntorch_net"
    assert default_name(f"{ROOT / 'examples' / 'snntorch_net.py'}:build_hidden") == "snntorch_net_build_hidden"
    assert default_name("missing/mine.py:build") == "mine"  # unreadable: the stem, the load names the error


# -- input = "pixels" -----------------------------------------------------------------------------
class _Probe(torch.nn.Module):
    """Logits = the per-channel mean of what the model sees; one Leaky so the adapter finds a layer."""

    def __init__(self, calls: int = 1):
        super().__init__()
        self.lif, self.calls = snn.Leaky(beta=0.5, init_hidden=True), calls  # calls: T for call = "image"

    def forward(self, x):
        for _ in range(self.calls):
            self.lif(x)
        return x.mean(dim=(2, 3)).repeat(1, 4)[:, :10]


@pytest.mark.parametrize("call", ["step", "image"])
def test_pixels_input_denormalizes_before_the_model(call):
    kw = dict(name="p", dataset="shapes", num_classes=10, channels=3, size=8, input_stats=STATS)
    calls = 2 if call == "image" else 1
    normalized = adapt(_Probe(calls), UserModelSpec(source="p.py:build", T=2, call=call), **kw)
    pixels = adapt(_Probe(calls), UserModelSpec(source="p.py:build", T=2, call=call, input="pixels"), **kw)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(normalized(x), x.mean(dim=(2, 3)).repeat(1, 4)[:, :10])
        assert torch.allclose(pixels(x), (x * 0.25 + 0.5).mean(dim=(2, 3)).repeat(1, 4)[:, :10])
    assert pixels.card.input == "pixels" and to_plain(pixels.card)["spec"]["input"] == "pixels"


def test_pixels_option_is_omitted_at_its_default_so_run_ids_stay():
    spec = UserModelSpec(source="p.py:build")
    assert "input" not in to_plain(spec)
    assert to_plain(UserModelSpec(source="p.py:build", input="pixels"))["input"] == "pixels"
