"""The SAM reference code's model, reproduced: neuron order "fire_integrate", its checkpoint format,
and the paper's figure layout.

The reference forward below is written from the reference note's equations (Kim & Panda 2021,
Sci. Rep. 11:19037; the SAM repository's ``model.py``), per layer and step::

    spike_t = 1[m_{t-1} > threshold];  m_t = leak * m_{t-1} + BN_t(W * input_t) - threshold * spike_t

on a small VGG with a hidden fc layer, random weights and random per-step BN statistics, in float64.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

import bench.models as models
from bench.cli import main
from bench.errors import BenchError
from bench.explain_figure import paper_rows
from bench.models.arch import ARCHS, VGG, ArchSpec
from bench.models.card import ModelCard, NeuronParams
from bench.models.encoders import poisson_signed
from bench.models.load import load_model_file
from bench.models.reference_ckpt import state_for
from bench.registry import MODELS

SPEC = ArchSpec(convs=(6, 8, 8), pool_after=(1, 2), fc_hidden=(12,))
T, K, SIZE, EPS = 7, 5, 8, 1e-4
LEAK, THETA = 0.99, 1.0
CARD = ModelCard(name="ref_tiny", kind="snn", arch="ref_tiny", dataset="none", num_classes=K, input_size=SIZE,
                 T=T, encoding="poisson_signed", bn="bntt", target_layers=("conv2",),
                 neuron=NeuronParams(leak=LEAK, threshold=THETA, order="fire_integrate"))


@pytest.fixture
def tiny_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ARCHS, "ref_tiny", SPEC)


def reference_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A float64 state dict in the reference code's naming, weights and per-step BN statistics random."""
    g = torch.Generator().manual_seed(seed)

    def bn_list(prefix: str, n: int) -> dict[str, torch.Tensor]:
        out = {}
        for t in range(T):
            out[f"{prefix}.{t}.weight"] = 0.5 + torch.rand(n, generator=g, dtype=torch.float64)
            out[f"{prefix}.{t}.running_mean"] = 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
            out[f"{prefix}.{t}.running_var"] = 0.2 + torch.rand(n, generator=g, dtype=torch.float64)
            out[f"{prefix}.{t}.num_batches_tracked"] = torch.tensor(100 + t)
        return out

    sd, cin = {}, 3
    for i, c in enumerate(SPEC.convs, 1):
        sd[f"conv{i}.weight"] = torch.randn(c, cin, 3, 3, generator=g, dtype=torch.float64) / math.sqrt(cin * 9)
        sd.update(bn_list(f"bn{i}_list", c))
        cin = c
    h = SPEC.fc_hidden[0]
    sd["fc1.weight"] = torch.randn(h, cin, generator=g, dtype=torch.float64) * 2 / math.sqrt(cin)
    sd.update(bn_list("bnfc_list", h))
    sd["fc2.weight"] = torch.randn(K, h, generator=g, dtype=torch.float64) / math.sqrt(h)
    return sd


def reference_forward(sd: dict[str, torch.Tensor], spikes_in: torch.Tensor):
    """``spikes_in [T, B, 3, H, W]`` -> (spikes per layer ``{name: [T, B, ...]}``, logits ``[B, K]``)."""
    def bn(z: torch.Tensor, prefix: str, t: int) -> torch.Tensor:  # eval BN without bias (BNTT)
        shape = (1, -1) + (1,) * (z.dim() - 2)
        mean, var = sd[f"{prefix}.{t}.running_mean"].view(shape), sd[f"{prefix}.{t}.running_var"].view(shape)
        return (z - mean) / torch.sqrt(var + EPS) * sd[f"{prefix}.{t}.weight"].view(shape)

    def neuron(m: torch.Tensor | None, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = torch.zeros_like(z) if m is None else m
        s = (m > THETA).double()  # fire from the previous step's membrane ...
        return s, LEAK * m + z - THETA * s  # ... then integrate; the reset is subtracted after the leak

    names = [f"conv{i}" for i in range(1, len(SPEC.convs) + 1)] + ["fc1"]
    mem: dict[str, torch.Tensor | None] = dict.fromkeys(names)
    rec: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    out = 0.0
    for t in range(T):
        h = spikes_in[t]
        for i in range(1, len(SPEC.convs) + 1):
            s, mem[f"conv{i}"] = neuron(mem[f"conv{i}"], bn(F.conv2d(h, sd[f"conv{i}.weight"], padding=1),
                                                            f"bn{i}_list", t))
            rec[f"conv{i}"].append(s)
            h = F.avg_pool2d(s, 2) if i in SPEC.pool_after else s
        s, mem["fc1"] = neuron(mem["fc1"], bn(h.mean((2, 3)) @ sd["fc1.weight"].T, "bnfc_list", t))
        rec["fc1"].append(s)
        out = out + s @ sd["fc2.weight"].T  # the non-spiking output layer accumulates ...
    return {n: torch.stack(v) for n, v in rec.items()}, out / T  # ... and is averaged over T


def ours(card: ModelCard, sd: dict[str, torch.Tensor], x: torch.Tensor, ids: torch.Tensor):
    model = VGG(card).double().eval()
    model.load_state_dict(state_for(model, {"state_dict": {f"module.{k}": v for k, v in sd.items()},
                                            "accuracy1": 61.2}))
    with torch.no_grad(), models.record(model, model.layer_names()) as rec:
        logits = model(x, sample_id=ids, seed=5)
    return rec.spikes, logits


def test_fire_integrate_model_equals_the_reference_forward(tiny_arch) -> None:
    sd = reference_state()
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 1.5
    ids = torch.tensor([7, 8, 9])
    theirs, ref_logits = reference_forward(sd, poisson_signed(x, T, ids, 5))
    spikes, logits = ours(CARD, sd, x, ids)
    for name, s in theirs.items():
        assert 0.02 < float(s.mean()) < 0.9, name  # every layer is active: the comparison means something
        assert torch.equal(spikes[name], s), name
    torch.testing.assert_close(logits, ref_logits, rtol=0, atol=1e-12)
    # the project's default order is a different model of the same weights (this test can fail)
    other, other_logits = ours(dataclasses.replace(CARD, neuron=NeuronParams(leak=LEAK, threshold=THETA)),
                               sd, x, ids)
    assert not torch.equal(other["conv1"], theirs["conv1"]) and not torch.allclose(other_logits, ref_logits)


def test_paper_card_uses_the_reference_order_and_other_cards_keep_theirs() -> None:
    assert models.get_card("vgg11_snn_t30").neuron.order == "fire_integrate"
    for name in MODELS.names():
        card = models.get_card(name)
        if card.kind == "snn" and name != "vgg11_snn_t30":
            assert card.neuron.order == "integrate_fire", name


def test_default_order_leaves_card_hashes_alone() -> None:
    from bench.config import build_dataclass, config_hash, to_plain

    card = models.get_card("vgg5_snn_t8")
    assert "order" not in to_plain(card)["neuron"]  # hashes and sidecars written before the option still match
    ref = dataclasses.replace(card, neuron=dataclasses.replace(card.neuron, order="fire_integrate"))
    assert to_plain(ref)["neuron"]["order"] == "fire_integrate" and config_hash(ref) != config_hash(card)
    assert build_dataclass(ModelCard, to_plain(card)) == card and build_dataclass(ModelCard, to_plain(ref)) == ref


# -- the checkpoint loader ---------------------------------------------------------------------------

@pytest.fixture
def tiny_card(tiny_arch):
    with MODELS.temporary(CARD.name, CARD):
        yield CARD


def _expected(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our names of the reference entries, written out for this architecture."""
    out = {}
    for i in range(len(SPEC.convs)):
        out[f"convs.{i}.weight"] = sd[f"conv{i + 1}.weight"]
        for t in range(T):
            for p in ("weight", "running_mean", "running_var", "num_batches_tracked"):
                out[f"norms.{i}.steps.{t}.{p}"] = sd[f"bn{i + 1}_list.{t}.{p}"]
                out[f"fc_norms.0.steps.{t}.{p}"] = sd[f"bnfc_list.{t}.{p}"]
    out["fcs.0.weight"], out["head.weight"] = sd["fc1.weight"], sd["fc2.weight"]
    return out


@pytest.mark.parametrize("wrap", ["dataparallel", "plain"])
def test_reference_checkpoint_round_trips(tiny_card, tmp_path, wrap) -> None:
    sd = {k: v.float() if v.is_floating_point() else v for k, v in reference_state(1).items()}
    path = tmp_path / "ref.pth"
    if wrap == "dataparallel":  # as the authors' checkpoint: module. prefixes, wrapped with its accuracy
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "accuracy1": 61.2, "epoch": 99}, path)
    else:
        torch.save(sd, path)
    model, prov = load_model_file("ref_tiny", path)
    state = model.state_dict()
    expected = _expected(sd)
    assert set(state) == set(expected)
    assert all(torch.equal(state[k], v) for k, v in expected.items())
    assert not model.training and prov.source == "user" and prov.path == str(path)
    # this project's own format loads through the same door
    torch.save(state, tmp_path / "ours.pt")
    again, _ = load_model_file("ref_tiny", tmp_path / "ours.pt")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in state.items())


def _save(tmp_path, sd) -> str:
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "accuracy1": 1.0}, path)
    return str(path)


def test_reference_checkpoint_errors_name_the_first_bad_key(tiny_card, tmp_path) -> None:
    sd = reference_state(2)
    missing = {k: v for k, v in sd.items() if k not in ("bn2_list.3.running_var", "fc2.weight")}
    with pytest.raises(BenchError, match=r"lacks 'bn2_list\.3\.running_var' \(for 'norms\.1\.steps\.3\.running_var'\)"):
        load_model_file("ref_tiny", _save(tmp_path, missing))
    shaped = {**sd, "fc1.weight": torch.zeros(12, 7, dtype=torch.float64)}
    with pytest.raises(BenchError, match=r"'fc1\.weight' has shape \[12, 7\], ref_tiny needs \[12, 8\]"):
        load_model_file("ref_tiny", _save(tmp_path, shaped))
    longer = {**sd, "bn1_list.7.weight": torch.ones(6, dtype=torch.float64)}  # a T = 8 checkpoint
    with pytest.raises(BenchError, match=r"has 'bn1_list\.7\.weight', which ref_tiny lacks"):
        load_model_file("ref_tiny", _save(tmp_path, longer))
    # BatchNorm's step counters are not weights: a checkpoint without them loads
    counters = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    load_model_file("ref_tiny", _save(tmp_path, counters))
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(BenchError, match="holds a list, not a state dict"):
        load_model_file("ref_tiny", tmp_path / "list.pt")
    with pytest.raises(BenchError, match="not found"):
        load_model_file("ref_tiny", tmp_path / "nope.pth")


def test_reference_format_cannot_hold_shared_bn(tiny_arch) -> None:
    model = VGG(dataclasses.replace(CARD, bn="shared"))
    with pytest.raises(BenchError, match="no name for 'norms.0.norm.weight'"):
        state_for(model, {"conv1.weight": torch.zeros(6, 3, 3, 3)})


# -- snnxai explain: --checkpoint and the paper's layout ---------------------------------------------

@pytest.fixture
def ref_order_zoo_card(untrained_zoo):
    """vgg5_snn_t8 (T = 8) in the reference order, registered as vgg5_snn_t8_ref for the test."""
    base = models.get_card("vgg5_snn_t8")
    card = dataclasses.replace(base, name="vgg5_snn_t8_ref",
                               neuron=dataclasses.replace(base.neuron, order="fire_integrate"))
    with MODELS.temporary(card.name, card):
        yield card


def test_paper_rows_every_third_step(ref_order_zoo_card) -> None:
    from bench.data.base import Batch

    model = models.load_model("vgg5_snn_t8_ref")
    b = Batch(x=torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)), y=torch.tensor([2]),
              sample_id=torch.tensor([5]))
    rows = paper_rows("sam", model, model.card, b, b.y, layer="conv2")
    assert [label for label, _ in rows] == ["sam (conv2)"]
    assert [p.title for p in rows[0][1]] == ["input", "t=0", "t=3", "t=6"]
    assert [p.step for p in rows[0][1]] == [None, 0, 3, 6] and rows[0][1][2].heat.shape == (32, 32)
    with pytest.raises(BenchError, match="per-step maps"):
        paper_rows("snn_saliency", model, model.card, b, b.y)


def test_explain_draws_the_paper_layout_for_a_reference_order_model(ref_order_zoo_card, tmp_path) -> None:
    out = tmp_path / "auto.png"  # no --layout: a fire_integrate model gets the paper's layout
    assert main(["explain", "--model", "vgg5_snn_t8_ref", "--sample", "3", "--out", str(out), "--no-twin"]) == 0
    from PIL import Image

    with Image.open(out) as img:  # draw_figure: 1.6 x 1.75 inches per panel at 150 dpi
        w, h = img.size
    assert abs(w - round(4 * 1.6 * 150)) <= 1 and abs(h - round(1.75 * 150)) <= 1  # input + t = 0, 3, 6


def test_explain_reads_a_reference_checkpoint(ref_order_zoo_card, tmp_path, capsys) -> None:
    ref = _reference_format(models.build_model("vgg5_snn_t8_ref"))
    path = tmp_path / "ref.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.items()}, "accuracy1": 50.0}, path)
    out = tmp_path / "fig.png"
    assert main(["explain", "--model", "vgg5_snn_t8_ref", "--sample", "1", "--out", str(out),
                 "--checkpoint", str(path)]) == 0
    del ref["bn3_list.2.weight"]
    torch.save({"state_dict": ref}, path)
    assert main(["explain", "--model", "vgg5_snn_t8_ref", "--sample", "1", "--out", str(out),
                 "--checkpoint", str(path)]) == 2
    assert "lacks 'bn3_list.2.weight'" in capsys.readouterr().err


# -- snnxai run --checkpoint ---------------------------------------------------------------------------

def test_run_checkpoint_picks_the_one_snn() -> None:
    import argparse

    from bench.adapters.cli import with_user_model
    from bench.suite import load_suite

    args = argparse.Namespace(model=None, checkpoint="w.pth", model_param=[], adapter=None)
    suite = with_user_model(load_suite("smoke", []), args)
    assert suite.checkpoints == {"vgg5_snn_t8": "w.pth"} and suite.plain()["checkpoints"] == suite.checkpoints
    assert "checkpoints" not in load_suite("smoke", []).plain()  # run hashes without --checkpoint unchanged
    two = load_suite("smoke", ['models=["vgg5_snn_t8", "vgg5_snn_t8_if"]'])
    with pytest.raises(BenchError, match="exactly one SNN; this one probes 2"):
        with_user_model(two, args)


def _reference_format(model) -> dict[str, torch.Tensor]:
    """A vgg5's weights as the reference code names them (no hidden fc: the head is fc1)."""
    ref = {f"conv{i + 1}.weight": c.weight for i, c in enumerate(model.convs)}
    ref |= {f"bn{i + 1}_list.{k}": v for i, n in enumerate(model.norms) for k, v in n.steps.state_dict().items()}
    ref["fc1.weight"] = model.head.weight
    return {k: v.detach().clone() for k, v in ref.items()}


@pytest.mark.slow
def test_run_with_the_zoo_weights_in_reference_format_gives_the_zoo_numbers(tmp_path) -> None:
    import pandas as pd

    path = tmp_path / "ref.pth"
    ref = _reference_format(models.load_model("vgg5_snn_t8", train_if_missing=False))  # the shipped zoo weights
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.items()}, "accuracy1": 94.3}, path)
    common = ["run", "smoke", "--quiet", "--no-report", "--limit", "4", "--set", f"run.cache_dir={tmp_path / 'c'}"]
    assert main([*common, "--out", str(tmp_path / "zoo")]) == 0
    assert main([*common, "--out", str(tmp_path / "ref"), "--checkpoint", str(path)]) == 0
    prov = (tmp_path / "ref" / "cells" / "_checkpoints" / "vgg5_snn_t8.json").read_text()
    assert '"source": "user"' in prov and str(path) in prov
    cols = ["sample_id", "model", "method", "metric", "timestep", "point", "value"]
    a, b = (pd.read_csv(next((tmp_path / d).glob("results.csv*")))[cols] for d in ("zoo", "ref"))
    assert len(a) > 20 and a["value"].notna().any()
    pd.testing.assert_frame_equal(a, b)
