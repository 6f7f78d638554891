"""On-disk cache of raw heatmaps, so metrics can be re-scored without re-explaining.

One entry of a :class:`bench.store.ContentStore` per (sample, method configuration): the raw
map ``[h, w]`` or ``[T, h, w]`` of that sample, stored with ``torch.save`` under a content-hash
key, with a sidecar holding its sha256. The key covers everything the map depends on: the model
weights (checkpoint sha256, or :func:`bench.store.state_digest`), the method name, version and
params, the layer, the sample id and the :func:`bench.store.tensor_digest` of its input, the
target class (label-dependent methods), the seed and :data:`CACHE_FORMAT`. Writes are atomic,
so concurrent runs never read half a file; a missing, damaged (sha256 mismatch) or unreadable
entry is a miss, recomputed and rewritten by the caller -- never used. A damaged entry is told
once, as one ``note:`` line naming its file (:func:`bench.store.note`); after
:data:`MAX_NOTES` of them one more line says that further ones are recomputed silently (a cache
damaged wholesale must not bury the run's output; :attr:`HeatmapCache.damaged` counts them all).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from bench.config import canonical_json
from bench.store import ContentStore, DamagedEntry, bytes_digest, note

#: Bump when the stored layout or the meaning of a raw map changes for every method.
#: 2: every entry carries a sha256 sidecar (format 1 files had none).
CACHE_FORMAT = 2
#: Damaged entries told by name per cache object; later ones are only counted.
MAX_NOTES = 5


class HeatmapCache(ContentStore):
    """Raw maps under ``root/<key[:2]>/<key>.pt`` (+ ``.json`` sidecar). ``hits``, ``misses`` and
    ``damaged`` (misses whose entry existed but failed its sha256 check) count lookups."""

    def __init__(self, root: str | Path):
        super().__init__(root, ".pt", fanout=True)
        self.hits = 0
        self.misses = 0
        self.damaged = 0

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        """The content hash of a map's identity (plain data, hashed as canonical JSON)."""
        return bytes_digest(canonical_json({**parts, "cache_format": CACHE_FORMAT}).encode())

    def get(self, key: str) -> torch.Tensor | None:
        """The map stored under ``key``, or None (absent, damaged or not a tensor)."""
        try:
            entry = self.read(key)
        except DamagedEntry as exc:
            self._tell_damaged(str(exc))
            entry = None
        value = None
        if entry is not None:
            try:
                value = torch.load(io.BytesIO(entry[0]), map_location="cpu", weights_only=True)
            except Exception:  # verified bytes that torch cannot read (a foreign writer): a miss
                value = None
        if isinstance(value, torch.Tensor):
            self.hits += 1
            return value
        self.misses += 1
        return None

    def _tell_damaged(self, why: str) -> None:
        """Count a damaged entry and tell it (the first :data:`MAX_NOTES` by name; ``why``
        names the file and the failed check, from :class:`~bench.store.DamagedEntry`)."""
        self.damaged += 1
        if self.damaged <= MAX_NOTES:
            note(f"damaged cache entry: {why}; recomputed")
        if self.damaged == MAX_NOTES:
            note(f"further damaged entries under {self.root} are recomputed without a note")

    def put(self, key: str, value: torch.Tensor) -> None:
        """Store map ``value`` (any shape) under ``key``, replacing a damaged entry."""
        buf = io.BytesIO()
        torch.save(value.detach().cpu().clone(), buf)  # clone: a view would save its whole base
        self.write(key, buf.getvalue())
