"""Registry-wide contract for the localization, faithfulness, sanity and complexity metrics:
metadata, output shapes, the finite-or-NaN policy, and independence from batch neighbours.
A metric registered in these categories is tested here the moment it exists."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from bench.data.base import Batch, box_to_mask
from bench.registry import METRICS
from metrics.base import ScoreInput, Scores

CATEGORIES = ("localization", "faithfulness", "sanity", "complexity")
NAMES = METRICS.names(category=list(CATEGORIES))
NEEDS = {"mask", "box", "model", "explainer"}
B, H = 4, 16


class Net(nn.Module):
    """Two convolutions and a linear head, ``model(x, sample_id=None, seed=0) -> logits [B, 3]``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(6, 3)

    def forward(self, x, sample_id=None, seed=0):
        return self.head(self.body(x).mean(dim=(2, 3)))


def input_x_gradient(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    model(x).max(dim=1).values.sum().backward()
    m = (x.grad * x).sum(1).clamp_min(0)
    return m / m.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)


def make_input(rows: slice = slice(None)) -> ScoreInput:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, 3, H, H, generator=g)
    box = torch.tensor([[2.0, 3.0, 12.0, 9.0], [0.0, 0.0, 5.0, 16.0], [4.0, 4.0, 8.0, 8.0], [1.0, 1.0, 2.0, 2.0]])
    mask = box_to_mask(box, H, H)
    mask[3] = False  # an empty mask: localization must answer NaN for it
    model = Net()
    maps = input_x_gradient(model, x)
    maps[2] = 0.0  # a silent (all-zero) map
    batch = Batch(x=x, y=torch.tensor([0, 1, 2, 0]), sample_id=torch.arange(10, 10 + B), mask=mask, box=box)
    batch = batch.select(rows)
    return ScoreInput(maps=maps[rows], batch=batch, model_fn=lambda xx, ids: model(xx, sample_id=ids),
                      model=model, method_model=model, explain_fn=input_x_gradient, seed=3,
                      data_mean=(0.5, 0.5, 0.5), data_std=(0.25, 0.25, 0.25))


def score(name: str, inp: ScoreInput) -> Scores:
    entry = METRICS.get(name)
    return entry.obj(inp, entry.make_params())


def test_every_family_is_present():
    cats = {METRICS.get(n).meta["category"] for n in NAMES}
    assert cats == set(CATEGORIES)


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    e = METRICS.get(name)
    m = e.meta
    assert e.obj.__name__ == name and e.summary
    assert isinstance(m["higher_is_better"], bool)
    assert m["needs"] <= NEEDS and isinstance(m["needs"], frozenset)
    assert m["output"] in ("scalar", "curve") and isinstance(m.get("per_timestep"), bool)
    assert m.get("scope") == "explanation"
    assert isinstance(m["version"], str) and m["reference"]
    if e.params_cls is not None:
        assert dataclasses.is_dataclass(e.params_cls) and e.params_cls.__dataclass_params__.frozen
    e.make_params()  # the defaults build


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_and_nan_policy(name):
    out = score(name, make_input())
    assert isinstance(out, Scores) and out.values.shape == (B,) and out.values.dtype.is_floating_point
    assert not torch.isinf(out.values).any()  # finite, or NaN for undefined
    if METRICS.get(name).meta["output"] == "curve":
        assert out.curve is not None and out.curve.dim() == 2 and out.curve.shape[0] == B
        assert len(out.points) == out.curve.shape[1]
        assert all(a < b for a, b in zip(out.points, out.points[1:]))
    else:
        assert out.curve is None and out.points is None
    if METRICS.get(name).meta["category"] == "localization":
        assert torch.isnan(out.values[3]) and not torch.isnan(out.values[:3]).any()


@pytest.mark.parametrize("name", NAMES)
def test_independent_of_batch_neighbours(name):
    together = score(name, make_input())
    for i in (0, 1):
        alone = score(name, make_input(slice(i, i + 1)))
        assert torch.allclose(together.values[i], alone.values[0], equal_nan=True, atol=1e-5)
        if together.curve is not None:
            assert torch.allclose(together.curve[i], alone.curve[0], equal_nan=True, atol=1e-5)
