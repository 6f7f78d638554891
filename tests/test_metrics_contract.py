"""Registry-wide contract for every registered metric, whatever its category or scope:
metadata, output shapes, the finite-or-NaN policy, and independence from batch neighbours.
A metric is tested here the moment it registers (``tests/test_new_metric.py`` shows it with a
metric of a new category registered inside the test). The ``check_*`` functions are the
contract; the parametrized tests apply them to :func:`contract_names`."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from basic_models import SmallConvNet
from torch import nn

from bench.data.base import Batch, box_to_mask
from bench.pipeline.services import direct_input, direct_model_input
from bench.registry import METRIC_CATEGORIES, METRICS, MetricSpec
from metrics.base import ModelScoreInput, ScoreInput, Scores

NEEDS = {"mask", "box", "model", "explainer", "step_mask"}
B, H = 4, 16
#: parameters that keep the contract fast, applied to every metric whose params have the field
#: (attacks: two budgets, few PGD steps; the transfer attack crafts on the probed model itself,
#: see make_input)
FAST = {"epsilons": [2 / 255, 8 / 255], "steps": 3, "source": "contract_net"}


def contract_names() -> list[str]:
    """Every registered metric: what the parametrized contract tests run over."""
    return METRICS.names()


NAMES = contract_names()


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
    model = SmallConvNet(3, 6, 3, depth=2)  # two conv blocks, logits [B, 3]
    maps = input_x_gradient(model, x)
    maps[2] = 0.0  # a silent (all-zero) map
    # per-step masks (temporal metrics): the static mask at each of 3 steps, 1 input channel a step
    step_mask = mask.unsqueeze(1).expand(B, 3, H, H)
    batch = Batch(x=x, y=torch.tensor([0, 1, 2, 0]), sample_id=torch.arange(10, 10 + B), mask=mask, box=box,
                  step_mask=step_mask)
    batch = batch.select(rows)
    stats = dict(seed=3, data_mean=(0.5, 0.5, 0.5), data_std=(0.25, 0.25, 0.25))
    MODEL_INPUTS[id(batch)] = direct_model_input(batch, model, named=lambda name: model, **stats)
    return direct_input(maps[rows], batch, model=model, explain=input_x_gradient, **stats)


#: the model-scope input beside each explanation-scope input make_input built (by its batch)
MODEL_INPUTS: dict[int, ModelScoreInput] = {}


def score(name: str, inp: ScoreInput) -> Scores:
    entry = METRICS.get(name)
    if entry.spec.scope == "model":  # model-scope metrics see the model and the batch, no maps
        inp = MODEL_INPUTS[id(inp.batch)]
    fields = {f.name for f in dataclasses.fields(entry.params_cls)} if entry.params_cls else set()
    return entry.obj(inp, entry.make_params({k: v for k, v in FAST.items() if k in fields}))


def test_every_documented_category_has_a_metric():
    cats = {METRICS.get(n).spec.category for n in NAMES}
    assert cats >= set(METRIC_CATEGORIES)


def check_metadata(name: str) -> None:
    e = METRICS.get(name)
    m = dataclasses.asdict(e.spec)
    assert isinstance(e.spec, MetricSpec) and m["category"] == e.spec.category
    assert e.obj.__name__ == name and e.summary
    assert isinstance(m["higher_is_better"], bool)
    assert m["needs"] <= NEEDS and isinstance(m["needs"], frozenset)
    assert m["output"] in ("scalar", "curve") and isinstance(m.get("per_timestep"), bool)
    assert m.get("scope") in ("explanation", "model")
    assert isinstance(m["version"], str) and m["reference"]
    if e.params_cls is not None:
        assert dataclasses.is_dataclass(e.params_cls) and e.params_cls.__dataclass_params__.frozen
    e.make_params()  # the defaults build


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    check_metadata(name)


def check_output_shapes_and_nan_policy(name: str) -> None:
    out = score(name, make_input())
    assert isinstance(out, Scores) and out.values.shape == (B,) and out.values.dtype.is_floating_point
    assert not torch.isinf(out.values).any()  # finite, or NaN for undefined
    if METRICS.get(name).spec.output == "curve":
        assert out.curve is not None and out.curve.dim() == 2 and out.curve.shape[0] == B
        assert len(out.points) == out.curve.shape[1]
        assert all(a < b for a, b in zip(out.points, out.points[1:]))
    else:
        assert out.curve is None and out.points is None
    if METRICS.get(name).spec.category == "localization":
        assert torch.isnan(out.values[3]) and not torch.isnan(out.values[:3]).any()


@pytest.mark.parametrize("name", NAMES)
def test_output_shapes_and_nan_policy(name):
    check_output_shapes_and_nan_policy(name)


def check_independent_of_batch_neighbours(name: str) -> None:
    together = score(name, make_input())
    for i in (0, 1):
        alone = score(name, make_input(slice(i, i + 1)))
        assert torch.allclose(together.values[i], alone.values[0], equal_nan=True, atol=1e-5)
        if together.curve is not None:
            assert torch.allclose(together.curve[i], alone.curve[0], equal_nan=True, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_independent_of_batch_neighbours(name):
    check_independent_of_batch_neighbours(name)
