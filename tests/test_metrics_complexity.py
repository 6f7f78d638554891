"""Complexity scores: Gini index and entropy known answers, invariances, degenerate maps."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.data.base import Batch
from bench.errors import BenchError
from bench.registry import METRICS
from metrics.base import ScoreInput
from metrics.complexity import gini, map_entropy


def one_hot(h=4, w=4):
    m = torch.zeros(1, h, w)
    m[0, 1, 2] = 1.0
    return m


def test_gini_known_values():
    n = 16
    assert gini(torch.ones(1, 4, 4)).item() == pytest.approx(0.0)
    assert gini(one_hot()).item() == pytest.approx((n - 1) / n)
    two = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])  # sorted 0,0,1,1: (1*1 + 3*1) / (4 * 2)
    assert gini(two).item() == pytest.approx(0.5)


def test_entropy_known_values():
    assert map_entropy(torch.ones(1, 4, 4)).item() == pytest.approx(1.0)
    assert map_entropy(one_hot()).item() == pytest.approx(0.0)
    two = torch.zeros(1, 4, 4)
    two[0, 0, :2] = 0.5
    assert map_entropy(two, normalized=False).item() == pytest.approx(math.log(2))
    assert map_entropy(two).item() == pytest.approx(math.log(2) / math.log(16))


def test_all_zero_map_is_nan_and_negative_map_an_error():
    assert math.isnan(gini(torch.zeros(1, 4, 4)).item())
    assert math.isnan(map_entropy(torch.zeros(1, 4, 4)).item())
    with pytest.raises(BenchError, match="non-negative"):
        gini(-one_hot())


def test_registered_metrics_and_direction():
    maps = torch.cat([one_hot(), torch.ones(1, 4, 4)])
    inp = ScoreInput(maps=maps, batch=Batch(x=torch.zeros(2, 1, 4, 4), y=torch.zeros(2, dtype=torch.long),
                                            sample_id=torch.arange(2)))
    sp, en = METRICS.get("sparseness"), METRICS.get("entropy")
    s = sp.obj(inp, sp.make_params()).values
    e = en.obj(inp, en.make_params({"normalized": True})).values
    # the concentrated map is the better one under both directions
    assert sp.spec.higher_is_better and s[0] > s[1]
    assert not en.spec.higher_is_better and e[0] < e[1]


maps_strategy = st.lists(st.floats(0, 1), min_size=16, max_size=16).map(
    lambda v: torch.tensor(v, dtype=torch.float64).view(1, 4, 4)).filter(lambda m: m.sum() > 1e-3)


@settings(max_examples=40, deadline=None)
@given(maps_strategy, st.floats(1e-2, 1e2))
def test_scale_invariance_and_bounds(maps, c):
    assert torch.allclose(gini(maps), gini(maps * c), atol=1e-5)
    assert torch.allclose(map_entropy(maps), map_entropy(maps * c), atol=1e-5)
    assert 0 <= gini(maps).item() <= 1 and -1e-6 <= map_entropy(maps).item() <= 1 + 1e-6


@settings(max_examples=20, deadline=None)
@given(st.lists(maps_strategy, min_size=2, max_size=3))
def test_independent_of_batch_composition(maps_list):
    maps = torch.cat(maps_list)
    for fn in (gini, map_entropy):
        assert torch.allclose(fn(maps)[0], fn(maps[:1])[0])
