"""Registry-wide contract tests: every registered method, on tiny real models.

Parametrized over ``METHODS.names()``, so a new method is tested the moment it registers:
shapes, finiteness, [0, 1] after post-processing, determinism, batch invariance, no hooks or
state or parameter gradients left in the model, and pass counts that match the metadata.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from basic_models import TINY_SIZE as SIZE
from basic_models import TINY_T as T
from basic_models import tiny_batch as batch
from basic_models import tiny_vgg
from torch import nn

from bench.cost import count_passes
from bench.data.base import Batch
from bench.explain import explain_batch
from bench.models.arch import VGG
from bench.registry import METHODS

#: keep the expensive methods small in tests
FAST = {"snn_integrated_gradients": {"n_steps": 6}, "ann_integrated_gradients": {"n_steps": 6},
        "snn_occlusion": {"window": 4, "stride": 4}}


def model_for(name: str) -> VGG:
    return tiny_vgg("ann" if METHODS.get(name).spec.model_kind == "ann" else "snn")


def explain(name: str, b: Batch, model: nn.Module | None = None):
    model = model or model_for(name)
    return explain_batch(name, FAST.get(name), model, model.card, b, target=b.y, seed=3)


def hooks_of(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("name", METHODS.names())
def test_shapes_range_and_flags(name: str) -> None:
    b = batch()
    e = explain(name, b)
    assert e.maps.shape == (3, SIZE, SIZE) and e.degenerate.shape == (3,)
    assert torch.isfinite(e.maps).all() and e.maps.min() >= 0 and e.maps.max() <= 1
    assert not e.degenerate.any(), "the tiny models are active: no map should be degenerate"
    assert torch.allclose(e.maps.amax((-2, -1)), torch.ones(3))
    if METHODS.get(name).spec.temporal:
        assert e.steps.shape == (T, 3, SIZE, SIZE) and e.steps_degenerate.shape == (T, 3)
        assert torch.isfinite(e.steps).all() and e.steps.min() >= 0 and e.steps.max() <= 1
    else:
        assert e.steps is None and e.steps_degenerate is None


@pytest.mark.parametrize("name", METHODS.names())
def test_deterministic_and_batch_invariant(name: str) -> None:
    b = batch()
    first, again = explain(name, b), explain(name, b)
    assert torch.equal(first.maps, again.maps)
    for i in range(len(b)):
        alone = explain(name, b.select(torch.tensor([i])))
        torch.testing.assert_close(alone.maps[0], first.maps[i], atol=1e-4, rtol=1e-4)
        if first.steps is not None:
            torch.testing.assert_close(alone.steps[:, 0], first.steps[:, i], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", METHODS.names())
def test_no_state_left_and_costs_match_metadata(name: str) -> None:
    model = model_for(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_hooks, training = hooks_of(model), model.training
    with count_passes(model) as cost:
        explain(name, batch(), model)
    meta = dataclasses.asdict(METHODS.get(name).spec)
    assert hooks_of(model) == n_hooks == 0
    assert model.training == training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    if meta["model_kind"] == "any":
        assert cost.forwards == 0 and cost.backwards == 0
    else:
        assert cost.forwards >= 1 and cost.samples >= 3
        assert (cost.backwards > 0) == meta["needs_grad"], cost


def test_metadata_is_complete() -> None:
    for entry in METHODS:
        assert entry.spec.model_kind in ("snn", "ann", "any")
        params = entry.make_params()
        if entry.spec.temporal:
            assert hasattr(params, "time_reduce"), entry.name
        # one algorithm may serve both model kinds (ann_saliency / snn_saliency -> saliency)
        assert entry.name in (entry.obj.__name__, f"{entry.spec.model_kind}_{entry.obj.__name__}")
