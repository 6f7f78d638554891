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

Both registered metrics re-run the method on the same randomized models; they share those maps
through the run's memo (:func:`metrics.base.explain_again`), each stage under its own model key
(:func:`stage_key`): the cascade randomizes one copy further in place from stage to stage, so
neither the copy's identity nor the original model's key may name a stage's weights.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from bench.errors import BenchError
from bench.registry import METRICS
from metrics._maps import is_constant
from metrics._randomize import cascade
from metrics._ssim import spearman, ssim
from metrics.base import ScoreInput, Scores, explain_again


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


def stage_key(model_key: str, params: RandomizationParams, seed: int, stage: int) -> str:
    """The model key of cascade stage ``stage`` of the model named ``model_key``: the stage's
    weights depend on the trained weights, the seed, the initializer, the neuron option and the
    stage (not on ``max_stages``: stage s is the same in a longer cascade). "" stays "" (no memo)."""
    if not model_key:
        return ""
    return (f"{model_key}|randomized(weight_init={params.weight_init},"
            f"randomize_neurons={params.randomize_neurons},seed={seed})|stage={stage}")


def randomized_maps(inp: ScoreInput, params: RandomizationParams) -> torch.Tensor:
    """``[S, B, H, W]`` maps of the method re-run after each cascading stage."""
    if inp.method_model is None or inp.explain_fn is None:
        raise BenchError("model_randomization needs the method's model and explain_fn")
    x = inp.batch.x
    stages = cascade(inp.method_model, x, inp.batch.sample_id, seed=inp.seed,
                     weight_init=params.weight_init, randomize_neurons=params.randomize_neurons,
                     max_stages=params.max_stages)
    # consume each stage before the cascade advances (it mutates the same copy)
    return torch.stack([explain_again(inp, model, stage_key(inp.method_model_key, params, inp.seed, s), x)
                        for s, model in enumerate(stages, 1)])


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
    rand = randomized_maps(inp, params)
    orig = inp.maps.abs()
    curve = torch.stack([spearman(orig, r.abs()) for r in rand], dim=1).to(inp.maps.device)
    return _stage_scores(_nan_rows(curve, is_constant(inp.maps)))


@METRICS.register(summary="Cascading randomization: SSIM between original and randomized maps per stage",
                  **_META)
def model_randomization_ssim(inp: ScoreInput, params: RandomizationParams) -> Scores:
    rand = randomized_maps(inp, params)
    curve = torch.stack([ssim(inp.maps, r) for r in rand], dim=1).float()
    return _stage_scores(_nan_rows(curve, is_constant(inp.maps)))


def _nan_rows(curve: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """NaN out every stage of the samples whose original map is degenerate."""
    return torch.where(rows.to(curve.device).view(-1, 1), torch.full_like(curve, math.nan), curve)
