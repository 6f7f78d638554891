"""The contract every explanation method follows.

A method is a plain function registered in :data:`bench.registry.METHODS`::

    @METHODS.register(summary=..., model_kind="snn", temporal=True, needs_grad=False,
                      needs_label=False, version="1", reference="Kim & Panda 2021",
                      params=SamParams)
    def sam(inp: ExplainInput, params: SamParams) -> torch.Tensor: ...

It returns *raw* maps: ``[B, h, w]`` (``temporal=False``) or ``[T, B, h, w]``
(``temporal=True``, one map per SNN time step). It never normalizes, applies ReLU/abs or
upsamples: :mod:`methods.postprocess` does that once for every method. Temporal methods have
a ``time_reduce`` field in their params, used for the single-map (time-aggregated) view.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from bench.models.card import ModelCard


@dataclasses.dataclass(frozen=True)
class ExplainInput:
    """What a method sees.

    model: the model the method runs on (the SNN, or the ANN twin for ``ann_*`` methods);
        called as ``model(x, sample_id=..., seed=...) -> logits [B, K]``.
    card: that model's card.  layer: the target layer name (from the card by default).
    x: ``[B, C, H, W]`` normalized input.  target: ``[B]`` long class to explain.
    sample_id: ``[B]`` long, keys the Poisson encoding and any method randomness.
    seed: the run seed.
    """

    model: nn.Module
    card: ModelCard
    layer: str
    x: torch.Tensor
    target: torch.Tensor
    sample_id: torch.Tensor
    seed: int = 0
