"""An in-memory cache of adversarial examples, so several methods and metrics share them.

Key: the model object (held weakly, so a freed model drops its entries and a recycled ``id``
never hits a stale entry), the attack spec, eps, seed, normalization, and a digest of the
sample ids, labels and clean inputs. The attack is deterministic given that key.

Each entry keeps the :func:`bench.store.tensor_digest` of the adversarial batch it stored, and a
hit is checked against it: an entry changed in place (a caller writing into a tensor it was
handed, memory damage) is a miss, re-crafted and told once (:func:`bench.store.note`), never used.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from bench.attacks.core import AttackSpec, attack
from bench.store import note, tensor_digest

#: Entries kept per model (least recently used are dropped first).
MAX_ENTRIES_PER_MODEL = 256

#: model -> {key: (adversarial batch [B, C, H, W], its tensor_digest)}, least recently used first
_CACHE: "weakref.WeakKeyDictionary[nn.Module, OrderedDict]" = weakref.WeakKeyDictionary()


def craft(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sample_id: torch.Tensor, eps: float,
          spec: AttackSpec, mean: Sequence[float], std: Sequence[float], seed: int = 0) -> torch.Tensor:
    """:func:`bench.attacks.core.attack`, memoized; returns a fresh tensor ``[B, C, H, W]``."""
    key = (spec, float(eps), int(seed), tuple(map(float, mean)), tuple(map(float, std)),
           tensor_digest(x, y, sample_id))
    entries = _CACHE.setdefault(model, OrderedDict())
    if key in entries:
        entries.move_to_end(key)
        adv, digest = entries[key]
        if tensor_digest(adv) == digest:
            return adv.clone()
        note(f"damaged cached adversarial batch ({spec.kind}, eps {eps:g}; digest mismatch), recomputed")
    adv = attack(model, x, y, sample_id, eps, spec, mean, std, seed).detach()
    entries[key] = (adv, tensor_digest(adv))
    while len(entries) > MAX_ENTRIES_PER_MODEL:
        entries.popitem(last=False)
    return adv.clone()


def clear_cache() -> None:
    """Forget every cached adversarial example."""
    _CACHE.clear()


def cache_size() -> int:
    """Number of cached adversarial batches over all models."""
    return sum(len(v) for v in _CACHE.values())
