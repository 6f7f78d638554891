"""The run's memo: the one mechanism for shared work (explanations, derived models, attacks).

Metrics of one batch often need the same expensive tensors: every stability metric re-explains
the same attacked inputs, both randomization metrics re-explain the same randomized models, the
per-time-step scores read the steps of one explanation, and every method's stability metrics on
one model attack the same batch. The runner's services (:mod:`bench.pipeline.services`) look
this work up by a key that *names* it:

* a model key: the checkpoint sha256 and the card hash (:func:`model_key`), or for a model a
  metric derives (a randomized copy) that key extended by the derivation's fields and the seed;
* the explanation job: method, params, layer, seed, post-processing (and the targets);
* a digest of the inputs (:func:`bench.store.tensor_digest` of the tensors, sample ids
  included: a Poisson SNN's encoding depends on them);
* for attacks, the attack spec, budget, seed and normalization.

Nothing is recognised by object identity or by looking inside a function, so a key can never
name two different computations. Two lifetimes: an entry made with ``keep=False`` lives until
:meth:`Memo.clear` (the runner clears after each batch: keys contain input digests, so a later
batch could never hit them; clearing only bounds memory). An entry made with ``keep=True`` (an
adversarial batch, shared by every cell of a model) survives ``clear``, up to
:data:`MAX_KEPT` entries, least recently used dropped first; a kept tensor is handed out as a
copy and checked against its digest on every hit, so a caller writing into it, or memory
damage, is a miss (recomputed and told once, :func:`bench.store.note`), never used.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

import torch

from bench.config import config_hash
from bench.models.card import ModelCard
from bench.store import note, tensor_digest

#: A memo key: a kind ("explanation", "model", "attack", ...) then the parts naming the work.
Key = tuple[str, ...]

#: Kept entries (adversarial batches) held across batches and cells.
MAX_KEPT = 256

T = TypeVar("T")


class Memo:
    """Values by :data:`Key`; a value is computed at most once while it is held."""

    def __init__(self) -> None:
        self._values: dict[Key, object] = {}
        self._kept: OrderedDict[Key, tuple[torch.Tensor, str]] = OrderedDict()

    def compute(self, key: Key, fn: Callable[[], T]) -> T:
        """The value under ``key``, computing it with ``fn()`` on the first request (until :meth:`clear`)."""
        if key not in self._values:
            self._values[key] = fn()
        return self._values[key]  # type: ignore[return-value]  # stored by this method as T

    def keep(self, key: Key, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        """A copy of the tensor under ``key``, computed with ``fn()`` on the first request and
        kept across :meth:`clear` (least recently used dropped beyond :data:`MAX_KEPT`)."""
        if key in self._kept:
            self._kept.move_to_end(key)
            value, digest = self._kept[key]
            if tensor_digest(value) == digest:
                return value.clone()
            note(f"damaged memo entry ({key[0]}; digest mismatch), recomputed")
        value = fn().detach()
        self._kept[key] = (value, tensor_digest(value))
        while len(self._kept) > MAX_KEPT:
            self._kept.popitem(last=False)
        return value.clone()

    def keys(self) -> list[Key]:
        return [*self._values, *self._kept]

    def clear(self) -> None:
        """Forget the per-batch entries (kept entries stay)."""
        self._values.clear()

    def clear_all(self) -> None:
        """Forget every entry, kept ones included."""
        self._values.clear()
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._values) + len(self._kept)


def model_key(sha256: str, card: ModelCard) -> str:
    """Names a model's behaviour: its weights (checkpoint sha256) and its card (hash of the
    encoding, T, neurons...: weights alone do not identify a spiking model)."""
    return f"{sha256}:{config_hash(card)}"
