"""Cascading model-parameter randomization (Adebayo et al., Sanity Checks for Saliency Maps, 2018).

Stage s re-initializes the top s weight layers (Conv/Linear, found in forward order by one
hooked forward pass), cumulatively from the output down, and re-runs the method on that
randomized copy; its maps are compared with the original maps per sample.

Choices (stated, and parameters where they matter):
- Weights and biases are redrawn from PyTorch's default initializer U(-1/sqrt(fan_in),
  1/sqrt(fan_in)) ("default"), or from N(0, std of the trained tensor) ("match_scale", which keeps
  activation scales, so an SNN is less likely to fall silent). Batch-norm parameters and running
  statistics are left as trained.
- ``randomize_neurons``: the spiking layers that run after a randomized weight layer (up to the
  next weight layer) also get their threshold and leak multiplied by U(0.5, 1.5) (leak capped at 1).
  Otherwise neuron parameters stay as trained.
- Randomness is keyed by ``(seed, stage, layer)`` via :mod:`bench.seeding` on the CPU, so the
  randomized model is the same for every batch; the work happens on a deepcopy, the original
  model is untouched.
- Degenerate maps: where the original map is constant (e.g. all zero) both scores are NaN; where
  a randomized map is constant, that stage's Spearman is NaN (undefined) while SSIM stays defined.
  ``values`` = mean over stages of the defined per-stage scores (NaN if none); ``curve`` keeps
  every stage (points = number of layers randomized). Lower = the method depends on the model.

Both registered metrics re-run the method on the same randomized models: each stage is asked for
as a variant of the method's model (:class:`RandomizedStage`, through ``inp.explain``), which the
runner builds and explains once per batch for both metrics.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Literal

import torch

from bench.registry import METRICS
from metrics._maps import is_constant
from metrics._randomize import cascade
from metrics._ssim import spearman, ssim
from metrics.base import NoSuchVariant, ScoreInput, Scores, require, variant


@dataclasses.dataclass(frozen=True)
class RandomizationParams:
    """randomize_neurons: also perturb threshold/leak of the spiking layers of randomized layers.
    weight_init: "default" (PyTorch initializer) or "match_scale". max_stages: top layers to
    randomize, None = all."""

    randomize_neurons: bool = False
    weight_init: Literal["default", "match_scale"] = "default"
    max_stages: int | None = None

    def __post_init__(self) -> None:
        if self.max_stages is not None and self.max_stages < 1:
            raise ValueError(f"max_stages must be >= 1, got {self.max_stages}")


@dataclasses.dataclass(frozen=True)
class RandomizedStage:
    """Cascade stage ``stage`` (the top ``stage`` weight layers randomized) of a model: a
    :class:`~metrics.base.Derivation`. Its weights depend on the trained weights, the seed, the
    initializer, the neuron option and the stage (not on ``max_stages``: stage s is the same in a
    longer cascade)."""

    weight_init: str
    randomize_neurons: bool
    stage: int

    def build(self, model: torch.nn.Module, x: torch.Tensor, sample_id: torch.Tensor, seed: int) -> torch.nn.Module:
        for s, randomized in enumerate(cascade(model, x, sample_id, seed=seed, weight_init=self.weight_init,
                                               randomize_neurons=self.randomize_neurons,
                                               max_stages=self.stage), 1):
            if s == self.stage:
                return randomized
        raise NoSuchVariant(f"the model has fewer than {self.stage} weight layers to randomize")


def randomized_maps(inp: ScoreInput, params: RandomizationParams, metric: str) -> torch.Tensor:
    """``[S, B, H, W]`` maps of the method re-run after each cascading stage."""
    require(inp.explain, "explain", metric)
    maps = []
    for s in itertools.count(1):
        if params.max_stages is not None and s > params.max_stages:
            break
        stage = variant(RandomizedStage(params.weight_init, params.randomize_neurons, s))
        try:
            maps.append(inp.explain(inp.batch.x, stage))  # type: ignore[misc]  # checked by require
        except NoSuchVariant:
            break
    return torch.stack(maps)


def _stage_scores(curve: torch.Tensor) -> Scores:
    """curve ``[B, S]`` -> Scores with values = mean over the defined stages."""
    points = tuple(float(s) for s in range(1, curve.shape[1] + 1))
    return Scores(values=torch.nanmean(curve, dim=1), curve=curve, points=points)


_META = dict(category="sanity", higher_is_better=False, needs=frozenset({"explainer"}), output="curve",
             per_timestep=False, scope="explanation", version="1",
             reference="Adebayo et al. 2018, Sanity Checks for Saliency Maps (NeurIPS)",
             params=RandomizationParams)


@METRICS.register(summary="Cascading randomization: Spearman rank correlation of |maps| per stage",
                  **_META)
def model_randomization(inp: ScoreInput, params: RandomizationParams) -> Scores:
    rand = randomized_maps(inp, params, "model_randomization")
    orig = inp.maps.abs()
    curve = torch.stack([spearman(orig, r.abs()) for r in rand], dim=1).to(inp.maps.device)
    return _stage_scores(_nan_rows(curve, is_constant(inp.maps)))


@METRICS.register(summary="Cascading randomization: SSIM between original and randomized maps per stage",
                  **_META)
def model_randomization_ssim(inp: ScoreInput, params: RandomizationParams) -> Scores:
    rand = randomized_maps(inp, params, "model_randomization_ssim")
    curve = torch.stack([ssim(inp.maps, r) for r in rand], dim=1).float()
    return _stage_scores(_nan_rows(curve, is_constant(inp.maps)))


def _nan_rows(curve: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """NaN out every stage of the samples whose original map is degenerate."""
    return torch.where(rows.to(curve.device).view(-1, 1), torch.full_like(curve, math.nan), curve)
