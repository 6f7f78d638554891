"""Localization metrics: known answers, tolerance geometry, boxes, aggregation, properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.data.base import Batch
from bench.errors import BenchError
from bench.registry import METRICS
from metrics import _localization as L
from metrics.base import ScoreInput

FUNCS = {
    "pointing": lambda m, k: L.pointing_game(m, k, 0),
    "energy": L.energy_pointing_game,
    "rra": L.relevance_rank_accuracy,
    "auroc": L.mask_auroc,
    "topk": lambda m, k: L.topk_iou(m, k, 0.25),
}


def square_mask(b: int = 2, h: int = 8, w: int = 8) -> torch.Tensor:
    m = torch.zeros(b, h, w, dtype=torch.bool)
    m[:, 2:6, 1:5] = True  # 16 of 64 pixels: a quarter
    return m


def score_input(maps: torch.Tensor, mask=None, box=None) -> ScoreInput:
    b = maps.shape[0]
    batch = Batch(x=torch.zeros(b, 1, *maps.shape[1:]), y=torch.zeros(b, dtype=torch.long),
                  sample_id=torch.arange(b), mask=mask, box=box)
    return ScoreInput(maps=maps, batch=batch)


def run(name: str, inp: ScoreInput, **params) -> torch.Tensor:
    entry = METRICS.get(name)
    return entry.obj(inp, entry.make_params(params)).values


@pytest.mark.parametrize("name", list(FUNCS))
def test_map_equal_to_mask_scores_one(name):
    m = square_mask()
    assert torch.equal(FUNCS[name](m.float(), m), torch.ones(2))


@pytest.mark.parametrize("name", ["pointing", "energy", "rra", "auroc"])
def test_inverted_mask_scores_zero(name):
    m = square_mask()
    assert torch.equal(FUNCS[name]((~m).float(), m), torch.zeros(2))


def test_topk_iou_known_value():
    m = square_mask(1)  # 16 pixels
    maps = torch.zeros(1, 8, 8)
    maps[0, 2, 1:5] = 1.0  # 4 top pixels inside the mask
    maps[0, 0, 0:4] = 0.9  # next 4 outside
    # top 8 pixels (fraction 1/8): 4 inside; union = 16 + 4 = 20
    assert L.topk_iou(maps, m, 8 / 64).item() == pytest.approx(4 / 20)


def test_relevance_rank_accuracy_partial():
    m = square_mask(1)
    maps = torch.zeros(1, 8, 8)
    maps[0, 2:4, 1:5] = 1.0  # 8 of the top 16 in the mask
    maps[0, 6:8, 0:4] = 0.5  # the other 8 outside
    maps[0, 4:6, 1:5] = 0.1  # rest of the mask ranks below
    assert L.relevance_rank_accuracy(maps, m).item() == pytest.approx(0.5)


def test_pointing_tolerance_is_euclidean_and_inclusive():
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[0, 5, 5] = True
    maps = torch.zeros(1, 16, 16)
    maps[0, 8, 9] = 1.0  # distance sqrt(3^2 + 4^2) = 5 from the mask pixel
    assert L.pointing_game(maps, mask, 5).item() == 1.0
    assert L.pointing_game(maps, mask, 4.99).item() == 0.0
    # Chebyshev distance would be 4: a square window would wrongly hit here.
    assert L.pointing_game(maps, mask, 4).item() == 0.0


def test_default_tolerance_scaled_from_224():
    assert L.default_tolerance(224) == 15
    assert L.default_tolerance(32) == 2
    assert L.default_tolerance(64) == 4
    mask = torch.zeros(2, 32, 32, dtype=torch.bool)
    mask[:, 10, 10] = True
    maps = torch.zeros(2, 32, 32)
    maps[0, 10, 12] = 1.0  # 2 px away: within the scaled tolerance
    maps[1, 10, 13] = 1.0  # 3 px away: outside
    assert run("pointing_game", score_input(maps, mask)).tolist() == [1.0, 0.0]
    assert run("pointing_game", score_input(maps, mask), tolerance=3).tolist() == [1.0, 1.0]


def test_argmax_ties_take_first_row_major_index():
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[0, 1, 6] = True  # the first maximum (row 1) is inside for sample 0
    mask[1, 6, 1] = True  # only the second maximum (row 6) is inside for sample 1
    maps = torch.zeros(2, 8, 8)
    maps[:, 1, 6] = 1.0
    maps[:, 6, 1] = 1.0
    assert L.pointing_game(maps, mask, 0).tolist() == [1.0, 0.0]


def test_random_maps_average_near_chance():
    g = torch.Generator().manual_seed(0)
    n = 400
    mask = torch.zeros(n, 16, 16, dtype=torch.bool)
    mask[:, 4:12, 4:12] = True  # a quarter of the image
    maps = torch.rand(n, 16, 16, generator=g)
    assert L.pointing_game(maps, mask, 0).mean().item() == pytest.approx(0.25, abs=0.06)
    assert L.energy_pointing_game(maps, mask).mean().item() == pytest.approx(0.25, abs=0.01)
    assert L.relevance_rank_accuracy(maps, mask).mean().item() == pytest.approx(0.25, abs=0.02)
    assert L.mask_auroc(maps, mask).mean().item() == pytest.approx(0.5, abs=0.02)
    # IoU of a random 10% with a 25% mask: E|A n M| = 6.4 px of |A u M| = 25.6 + 64 - 6.4
    assert L.topk_iou(maps, mask, 0.1).mean().item() == pytest.approx(6.4 / 83.2, abs=0.02)


def test_asymmetric_box_uses_x_as_column():
    h, w = 12, 16
    box = torch.tensor([[2.0, 1.0, 10.0, 4.0]])  # x0, y0, x1, y1: 8 columns wide, 3 rows tall
    right = torch.zeros(1, h, w)
    right[0, 1:4, 2:10] = 1.0
    swapped = torch.zeros(1, h, w)
    swapped[0, 2:10, 1:4] = 1.0  # the Score-CAM reference's x/y swap
    assert run("energy_pointing_game", score_input(right, box=box), region="box").item() == 1.0
    # swapped: rows 2..3 x cols 2..3 overlap the box = 4 of 24 pixels
    assert run("energy_pointing_game", score_input(swapped, box=box), region="box").item() == pytest.approx(4 / 24)
    assert run("pointing_game", score_input(right, box=box), region="box", tolerance=0).item() == 1.0


def test_box_region_without_boxes_is_a_bench_error():
    m = square_mask()
    with pytest.raises(BenchError, match="box"):
        run("energy_pointing_game", score_input(m.float(), mask=m), region="box")
    with pytest.raises(BenchError, match="mask"):
        run("energy_pointing_game", score_input(m.float()))


def test_bad_inputs_are_bench_errors():
    m = square_mask()
    with pytest.raises(BenchError, match="shape"):
        L.energy_pointing_game(m.float()[0], m[0])
    with pytest.raises(BenchError, match="match"):
        L.energy_pointing_game(m.float(), m[:, :4])
    with pytest.raises(BenchError, match="non-negative"):
        L.energy_pointing_game(-m.float(), m)
    with pytest.raises(BenchError, match="NaN"):
        L.pointing_game(torch.full((2, 8, 8), math.nan), m, 1)


def test_mask_auroc_undefined_for_full_mask():
    full = torch.ones(1, 8, 8, dtype=torch.bool)
    assert math.isnan(L.mask_auroc(torch.rand(1, 8, 8), full).item())


def test_class_balanced_mean_averages_classes_then_over_classes():
    values = torch.tensor([1.0, 1.0, 1.0, 0.0, math.nan])
    classes = torch.tensor([0, 0, 0, 1, 2])
    overall, per_class = L.class_balanced_mean(values, classes)
    assert per_class == {0: 1.0, 1: 0.0}  # class 2 has only NaN: left out
    assert overall == 0.5  # the per-sample mean would be 0.75


# -- properties --------------------------------------------------------------------------------

maps_strategy = st.lists(st.integers(0, 40), min_size=64, max_size=64).map(
    lambda v: torch.tensor(v, dtype=torch.float64).view(1, 8, 8) / 40)
mask_strategy = st.lists(st.booleans(), min_size=64, max_size=64).map(
    lambda v: torch.tensor(v).view(1, 8, 8))
TRANSFORMS = [lambda t: t ** 3, lambda t: torch.exp(3 * t) - 1, lambda t: torch.sqrt(t) * 0.5 + 0.1,
              lambda t: 1 / (2 - t)]


@settings(max_examples=40, deadline=None)
@given(maps_strategy, mask_strategy, st.sampled_from(range(len(TRANSFORMS))))
def test_rank_metrics_invariant_to_increasing_transforms(maps, mask, t):
    f = TRANSFORMS[t]
    for name in ["pointing", "rra", "auroc", "topk"]:
        a, b = FUNCS[name](maps, mask), FUNCS[name](f(maps), mask)
        assert torch.allclose(a, b, equal_nan=True), name


@settings(max_examples=40, deadline=None)
@given(maps_strategy, mask_strategy, st.floats(1e-3, 1e3))
def test_energy_invariant_to_positive_scaling(maps, mask, c):
    a, b = L.energy_pointing_game(maps, mask), L.energy_pointing_game(maps * c, mask)
    assert torch.allclose(a, b, equal_nan=True, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.lists(maps_strategy, min_size=2, max_size=4), mask_strategy, st.integers(0, 3))
def test_scores_independent_of_batch_composition(maps_list, mask, pick):
    maps = torch.cat(maps_list)
    masks = mask.expand(len(maps_list), -1, -1)
    i = pick % len(maps_list)
    for name, fn in FUNCS.items():
        together = fn(maps, masks)[i]
        alone = fn(maps[i:i + 1], masks[i:i + 1])[0]
        assert torch.allclose(together, alone, equal_nan=True), name
