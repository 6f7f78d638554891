"""A card's model and the data it trains on: the bottom of :mod:`bench.models` (training,
conversion and the checkpoint loader all build models and resolve training data through here,
so none of them imports another back)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from bench.config import to_plain
from bench.errors import BenchError
from bench.models.card import ModelCard


def get_card(name: str) -> ModelCard:
    """The registered card ``name`` (UnknownNameError with "did you mean" otherwise)."""
    from bench.registry import MODELS

    return MODELS.get(name).obj


def build_model(card_or_name: ModelCard | str, seed: int = 0) -> nn.Module:
    """A fresh model for a card, initialized from ``seed`` (the global RNG is left untouched)."""
    from bench.models.arch import VGG

    card = get_card(card_or_name) if isinstance(card_or_name, str) else card_or_name
    stats = None
    if card.encoding == "poisson":  # plain Poisson codes pixel intensities: needs mean/std
        ds = dataset_for(card)
        stats = (tuple(ds.mean), tuple(ds.std))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VGG(card, stats)


def dataset_for(card: ModelCard, dataset: str | None = None, params: dict[str, Any] | None = None, split: str = "train"):
    """The dataset split a card trains on (``params`` override the card's ``image_size``)."""
    from bench.data import get_dataset
    from bench.registry import DATASETS

    name = dataset or card.dataset
    cls = DATASETS.get(name).params_cls
    sized = cls is not None and "image_size" in {f.name for f in dataclasses.fields(cls)}
    table = {"image_size": card.input_size} if sized else {}
    ds = get_dataset(name, split, {**table, **(params or {})})
    if (ds.num_classes, ds.image_size, ds.channels) != (card.num_classes, card.input_size, card.in_channels):
        raise BenchError(f"{card.name} expects {card.num_classes} classes of {card.in_channels}x{card.input_size}"
                         f"x{card.input_size} images; {name}/{split} has {ds.num_classes} classes of "
                         f"{ds.channels}x{ds.image_size}x{ds.image_size}")
    return ds


def data_config(card: ModelCard, dataset: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a checkpoint was trained on (part of the cache key): name, resolved params, fingerprint."""
    ds = dataset_for(card, dataset, params)
    return {"dataset": ds.name, "params": to_plain(getattr(ds, "params", params or {})),
            "train_fingerprint": ds.fingerprint()}
