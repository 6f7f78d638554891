"""Every published SAM definition against a literal loop transcription of its source, on
random spikes, and through its registered method on a real model's recorded spikes."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from basic_models import tiny_batch, tiny_vgg

from bench.models.record import record
from bench.registry import METHODS
from methods.base import ExplainInput
from methods.sam import spike_activation_map


def paper_inclusive(F, gamma):
    """Kim & Panda's text: M[t] = sum_k S[t,k] sum_{t' <= t, S[t',k]=1} exp(-gamma (t - t'))."""
    T = F.shape[0]
    out = torch.zeros(T, F.shape[1], *F.shape[3:], dtype=torch.float64)
    for t in range(T):
        ncs = torch.zeros_like(F[0], dtype=torch.float64)
        for tp in range(t + 1):
            ncs += F[tp] * math.exp(-gamma * (t - tp))
        out[t] = (ncs * F[t]).sum(1)
    return out


def paper_exclusive(F, gamma):
    """The same with strictly earlier spikes t' < t."""
    T = F.shape[0]
    out = torch.zeros(T, F.shape[1], *F.shape[3:], dtype=torch.float64)
    for t in range(T):
        ncs = torch.zeros_like(F[0], dtype=torch.float64)
        for tp in range(t):
            ncs += F[tp] * math.exp(-gamma * (t - tp))
        out[t] = (ncs * F[t]).sum(1)
    return out


def official_main_py(F, gamma):
    """The authors' main.py: for each step p <= t, exp(-gamma * (t - S[p] * p)), times S[t]."""
    T = F.shape[0]
    out = torch.zeros(T, F.shape[1], *F.shape[3:], dtype=torch.float64)
    for t in range(T):
        ncs = torch.zeros_like(F[0], dtype=torch.float64)
        for p in range(t + 1):
            ncs += torch.exp(-gamma * (t - F[p].double() * p))
        out[t] = (ncs * F[t]).sum(1)
    return out


def eventrpg_relprop_sam(feature_map):
    """EventRPG snn_utils/sew_resnet.py relprop, "SAM" branch, verbatim (time-first layout)."""
    R = torch.zeros_like(feature_map)
    for T in range(feature_map.shape[0]):
        for t in range(T):
            R[T] += feature_map[t] * math.exp(-0.2 * (T - t))
    R = R.sum(dim=2, keepdim=True)
    return R[:, :, 0]


DEFINITIONS = {"inclusive": paper_inclusive, "exclusive": paper_exclusive, "official": official_main_py}


def _spikes(seed=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(9, 2, 5, 4, 3, generator=g) < 0.4).float()


@pytest.mark.parametrize("variant", sorted(DEFINITIONS))
def test_kim_panda_definitions_equal_their_loops(variant: str) -> None:
    F = _spikes()
    torch.testing.assert_close(spike_activation_map(F, 0.5, variant).double(), DEFINITIONS[variant](F, 0.5),
                               rtol=1e-5, atol=1e-5)


def test_eventrpg_equals_its_relprop_loop() -> None:
    F = _spikes(4).double()
    torch.testing.assert_close(spike_activation_map(F, 0.2, "eventrpg"), eventrpg_relprop_sam(F),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name, variant, gamma", [("sam", "inclusive", 0.5), ("sam_exclusive", "exclusive", 0.5),
                                                  ("sam_official", "official", 0.5),
                                                  ("sam_eventrpg", "eventrpg", 0.2)])
def test_registered_definitions_on_recorded_spikes(name: str, variant: str, gamma: float) -> None:
    model, b = tiny_vgg("snn"), tiny_batch(2)
    inp = ExplainInput(model, model.card, "conv2", b.x, b.y, b.sample_id, 3)
    with torch.no_grad(), record(model, ["conv2"]) as rec:
        model(b.x, sample_id=b.sample_id, seed=3)
    F = rec.spikes["conv2"].double()
    want = eventrpg_relprop_sam(F) if variant == "eventrpg" else DEFINITIONS[variant](F, gamma)
    entry = METHODS.get(name)
    torch.testing.assert_close(entry.obj(inp, entry.make_params()).double(), want, rtol=1e-5, atol=1e-5)


def test_named_definitions_are_registered_with_references() -> None:
    for name in ("sam", "sam_exclusive", "sam_official", "sam_tsa", "sam_eventrpg"):
        meta = dataclasses.asdict(METHODS.get(name).spec)
        assert meta["reference"] and meta["version"]
