"""The run's memo: work several metrics share (re-explanations, attacked inputs), by explicit key.

Metrics of one batch often need the same expensive tensors: every stability metric re-explains
the same attacked inputs, both randomization metrics re-explain the same randomized models, and
the per-time-step scores read the steps of one explanation. The runner hands one :class:`Memo`
to every metric (``ScoreInput.memo``); a metric looks work up by a key that *names* it:

* a model key: the checkpoint sha256 and the card hash (:func:`model_key`), or for a model a
  metric derives (a randomization stage) that key extended by what the derivation depends on;
* the explanation job: method, params, layer, seed, post-processing, targets (and time step);
* a digest of the inputs (:func:`bench.store.tensor_digest` of the tensors, sample ids
  included: a Poisson SNN's encoding depends on them);
* for attacked inputs, the attack's params.

Nothing is recognised by object identity or by looking inside a function, so a key can never
name two different computations. Outside a run (tests, direct calls) ``memo`` is None and every
metric computes. The runner clears the memo after each batch: keys contain input digests, so a
later batch could never hit an earlier batch's entries; clearing only bounds memory.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from bench.config import config_hash
from bench.models.card import ModelCard

#: A memo key: a kind ("explanation", "maps", "attacked_inputs", ...) then the parts naming the work.
Key = tuple[str, ...]

T = TypeVar("T")


class Memo:
    """Values by :data:`Key`; a value is computed at most once while it is held."""

    def __init__(self) -> None:
        self._values: dict[Key, object] = {}

    def compute(self, key: Key, fn: Callable[[], T]) -> T:
        """The value under ``key``, computing it with ``fn()`` on the first request."""
        if key not in self._values:
            self._values[key] = fn()
        return self._values[key]  # type: ignore[return-value]  # stored by this method as T

    def put(self, key: Key, value: object) -> None:
        """Record ``value`` under ``key`` (the first record of a key wins: it names one value)."""
        self._values.setdefault(key, value)

    def find(self, key: Key, kind: type[T]) -> T | None:
        """The value under ``key`` if it is a ``kind``, else None."""
        value = self._values.get(key)
        return value if isinstance(value, kind) else None

    def keys(self) -> list[Key]:
        return list(self._values)

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)


def model_key(sha256: str, card: ModelCard) -> str:
    """Names a model's behaviour: its weights (checkpoint sha256) and its card (hash of the
    encoding, T, neurons...: weights alone do not identify a spiking model)."""
    return f"{sha256}:{config_hash(card)}"


def params_key(params: object) -> str:
    """A dataclass of params (or None) as a key part."""
    return config_hash(params)
