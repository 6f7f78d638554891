"""What a robustness metric has to look up about a model: normalization, stochasticity, twin.

Kept apart from the pure attacks so that :mod:`bench.attacks.core` needs no registry.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

from bench.errors import BenchError


def card_of(model: nn.Module):
    """The model's :class:`~bench.models.card.ModelCard` (zoo models carry ``.card``), or None."""
    return getattr(model, "card", None)


def norm_stats(model: nn.Module, mean: Sequence[float] | None, std: Sequence[float] | None
               ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The dataset normalization: ``mean``/``std`` if given (``ScoreInput.data_mean/data_std``),
    else the statistics of the dataset named by the model's card."""
    if mean is not None and std is not None:
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise BenchError(f"invalid normalization: mean {tuple(mean)}, std {tuple(std)}")
        return tuple(map(float, mean)), tuple(map(float, std))
    card = card_of(model)
    if card is None:
        raise BenchError("robustness metrics need the dataset's mean/std (ScoreInput.data_mean/"
                         "data_std), and the model has no card to look them up")
    return _dataset_stats(card.dataset)


@functools.lru_cache(maxsize=8)
def _dataset_stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    from bench.data import get_dataset

    ds = get_dataset(name, "test")
    return tuple(map(float, ds.mean)), tuple(map(float, ds.std))


@torch.no_grad()
def is_stochastic(model: nn.Module, x: torch.Tensor, sample_id: torch.Tensor, seed: int = 0) -> bool:
    """Whether the model's output depends on the encoding seed (Poisson input): from the card
    when there is one, else by comparing two encoding seeds on ``x``."""
    card = card_of(model)
    if card is not None:
        return card.kind == "snn" and card.encoding.startswith("poisson")
    a = model(x, sample_id=sample_id, seed=seed)
    b = model(x, sample_id=sample_id, seed=seed + 1)
    return not torch.equal(a, b)


def twin_name(card) -> str:
    """The twin of the model of ``card``: the card's ``twin``, else (for an ANN, whose card names
    none) the first SNN in name order whose twin it is; "" when there is none."""
    if card.twin:
        return card.twin
    from bench.models import get_card
    from bench.registry import MODELS

    for name in MODELS.names():
        other = get_card(name)
        if other.twin == card.name and other.kind != card.kind:
            return name
    return ""


def transfer_source_name(model: nn.Module, source: str) -> str:
    """The model adversarial examples are transferred from: ``source`` if given, else the
    model's twin (:func:`twin_name`)."""
    if source:
        return source
    card = card_of(model)
    if card is None:
        raise BenchError("transfer attack: set the metric's 'source' param (the model has no card)")
    name = twin_name(card)
    if not name:
        raise BenchError(f"transfer attack: model {card.name!r} has no twin; set the metric's 'source' param")
    return name


@functools.lru_cache(maxsize=4)
def _load(name: str, device: str, seed: int) -> nn.Module:
    from bench.models import load_model

    return load_model(name, device=device, seed=seed, train_if_missing=False)


def load_source(name: str, device: torch.device, seed: int = 0) -> nn.Module:
    """The transfer source model (eval mode) outside a run, loaded once per (name, device, seed).

    The default resolution (the card's dataset; zoo, then ``$SNNXAI_CACHE`` or the user cache;
    ``seed`` = the training seed, 0 for the zoo) but never trains: a missing checkpoint is a
    BenchError naming the model. Inside a run, metrics get the runner's loader instead
    (``ScoreInput.load_model``), which follows the suite's dataset, cache and model seed.
    """
    return _load(name, str(device), int(seed))
