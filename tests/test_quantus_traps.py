"""Regression tests for the localization traps of Quantus 0.6.0 (Hedstroem et al., JMLR 2023).

1. An empty mask counted as a hit (NaN cast to True)  -> here NaN, excluded and counted.
2. Any tied maximum counts, so a constant / all-zero map (a silent SNN layer) is a hit
   -> here a miss (0) for the pointing game and every hit/overlap score.
3. Normalization across the batch makes a score depend on batch neighbours -> per sample.
"""

from __future__ import annotations

import math

import pytest
import torch

from bench.data.base import Batch
from bench.registry import METRICS
from metrics.base import ScoreInput

LOCALIZATION = METRICS.names(category="localization")


def scores(name: str, maps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    b = maps.shape[0]
    entry = METRICS.get(name)
    # per-step metrics (shapes_motion) read the mask of each step: one step with the same mask,
    # so the traps below hold for them exactly as for the static metrics
    step = mask[:, None] if "step_mask" in entry.spec.needs else None
    batch = Batch(x=torch.zeros(b, 3, *maps.shape[1:]), y=torch.zeros(b, dtype=torch.long),
                  sample_id=torch.arange(b), mask=mask, step_mask=step)
    return entry.obj(ScoreInput(maps=maps, batch=batch), entry.make_params()).values


def test_localization_metrics_are_registered():
    assert {"pointing_game", "energy_pointing_game", "relevance_rank_accuracy", "mask_auroc",
            "topk_iou"} <= set(LOCALIZATION)


@pytest.mark.parametrize("name", LOCALIZATION)
def test_empty_mask_is_nan_not_a_hit(name):
    maps = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(2, 16, 16, dtype=torch.bool)
    mask[1, 3:9, 3:9] = True
    out = scores(name, maps, mask)
    assert math.isnan(out[0].item())
    assert not math.isnan(out[1].item())


@pytest.mark.parametrize("fill", [0.0, 0.7])
@pytest.mark.parametrize("name", ["pointing_game", "relevance_rank_accuracy", "topk_iou"])
def test_constant_map_is_never_a_hit(name, fill):
    # The mask covers pixel (0, 0), where a first-index argmax of a constant map lands,
    # and most of the image, so any tie-tolerant rule would score a hit.
    maps = torch.full((1, 16, 16), fill)
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[0, :12, :12] = True
    assert scores(name, maps, mask).item() == 0.0


def test_all_zero_map_has_no_energy_inside():
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[0, :8] = True
    assert scores("energy_pointing_game", torch.zeros(1, 16, 16), mask).item() == 0.0
    assert scores("mask_auroc", torch.zeros(1, 16, 16), mask).item() == 0.5  # all ties


@pytest.mark.parametrize("name", LOCALIZATION)
def test_score_independent_of_batch_neighbours(name):
    g = torch.Generator().manual_seed(2)
    mask = torch.zeros(3, 16, 16, dtype=torch.bool)
    mask[:, 4:10, 5:12] = True
    target = torch.rand(1, 16, 16, generator=g) * 0.2  # a dim map
    bright = torch.ones(1, 16, 16)  # a neighbour that would dominate a batch-wide max
    bright[0, 0, 0] = 0.0
    silent = torch.zeros(1, 16, 16)
    alone = scores(name, target, mask[:1])
    for neighbours in ([bright], [silent, bright], [bright, silent]):
        together = scores(name, torch.cat([target, *neighbours]), mask[: 1 + len(neighbours)])
        assert torch.allclose(together[:1], alone, equal_nan=True)
