"""On-disk cache of raw heatmaps, so metrics can be re-scored without re-explaining.

One file per (sample, method configuration): the raw map ``[h, w]`` or ``[T, h, w]`` of that
sample, stored with ``torch.save`` under a content-hash key. The key covers everything the map
depends on: the model weights (checkpoint sha256, or a hash of the state dict), the method name,
version and params, the layer, the sample id and the hash of its input tensor, the target class
(label-dependent methods), the seed and :data:`CACHE_FORMAT`. Writes are atomic (temporary file
in the same folder, then ``os.replace``), so concurrent runs never read half a file; an
unreadable file is a miss.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.config import canonical_json

#: Bump when the stored layout or the meaning of a raw map changes for every method.
CACHE_FORMAT = 1


def tensor_digest(t: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes (CPU, contiguous)."""
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    flat = t.detach().cpu().contiguous().reshape(-1)  # 0-d tensors cannot be viewed as bytes
    h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return h.hexdigest()


def state_fingerprint(model: nn.Module) -> str:
    """sha256 over a model's state dict (names, shapes, values): the weights' identity."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor_digest(value).encode())
    return h.hexdigest()


class HeatmapCache:
    """Raw maps under ``root/<key[:2]>/<key>.pt``. ``hits`` / ``misses`` count lookups."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        """The content hash of a map's identity (plain data, hashed as canonical JSON)."""
        return hashlib.sha256(canonical_json({**parts, "cache_format": CACHE_FORMAT}).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def get(self, key: str) -> torch.Tensor | None:
        p = self.path(key)
        try:
            value = torch.load(p, map_location="cpu", weights_only=True)
        except Exception:  # missing, truncated or foreign file: a miss (the next put repairs it)
            value = None
        if isinstance(value, torch.Tensor):
            self.hits += 1
            return value
        self.misses += 1
        return None

    def put(self, key: str, value: torch.Tensor) -> None:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(value.detach().cpu().clone(), f)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
