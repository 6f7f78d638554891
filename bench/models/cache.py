"""Checkpoint files: a ``.pt`` state dict plus a ``.json`` sidecar carrying its sha256.

A checkpoint is an entry of a :class:`bench.store.ContentStore`; the same format serves the
user cache and the shipped zoo (``bench/zoo/<name>.pt``, see :mod:`bench.models.zoo`):

* cache directory: the ``cache_dir`` argument, else env ``SNNXAI_CACHE``, else ``~/.cache/snnxai``;
  a cached checkpoint lives at ``<dir>/models/<name>-<key>.pt``;
* key: :func:`bench.config.config_hash` of (card, data config, training config -- part of the
  card --, seed, code version), so any change to what would be trained is a different file;
* writes are atomic, the sidecar last; reads check the bytes' sha256 against the sidecar and
  load exactly the verified bytes with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import platform
from pathlib import Path
from typing import Any

import torch

from bench.config import build_dataclass, config_hash, to_plain
from bench.errors import BenchError
from bench.models.card import ModelCard
from bench.paths import cache_dir  # the one rule, shared with the torch-free listing cache
from bench.store import ContentStore, DamagedEntry, read_entry, read_sidecar, sidecar, write_entry

__all__ = ["CODE_VERSION", "cache_dir", "cache_key", "cache_path", "checkpoint_store", "load_checkpoint",
           "read_meta", "recorded_card", "save_checkpoint", "sidecar", "training_meta"]

#: Bump when model or training code changes what a checkpoint of the same card would hold.
CODE_VERSION = "1"


def cache_key(card: ModelCard, data: dict[str, Any], seed: int, twin: ModelCard | None = None,
              init: ModelCard | None = None) -> str:
    """Stable hash of everything that determines a trained checkpoint (``twin``: the source of a
    conversion or twin initialisation; ``init``: the model whose weights training starts from,
    hashed only when there is one, so every other key stays as it was)."""
    extra = {"init": init} if init is not None else {}
    return config_hash({"card": card, "data": data, "seed": seed, "twin": twin, "code": CODE_VERSION, **extra})


def checkpoint_store(root: str | Path | None = None) -> ContentStore:
    """The checkpoint cache: entries ``<cache_dir(root)>/models/<name>-<key>.pt``."""
    return ContentStore(cache_dir(root) / "models", ".pt", fanout=False)


def cache_path(card: ModelCard, key: str, root: str | Path | None = None) -> Path:
    return checkpoint_store(root).path(f"{card.name}-{key}")


def training_meta(card: ModelCard, data: dict[str, Any], seed: int, command: str, report: dict[str, Any],
                  **extra: Any) -> dict[str, Any]:
    """What every checkpoint sidecar records about its training (the cache adds its ``key``, the
    zoo the ``machine``): card, data config, seed, command, versions and the training report."""
    return {"name": card.name, "card": card, "data": data, "seed": seed, "command": command,
            "torch_version": torch.__version__, "python_version": platform.python_version(), **extra, **report}


def save_checkpoint(state: dict[str, torch.Tensor], path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``state`` to ``path`` and ``meta`` + sha256 + size to its sidecar; returns the sidecar dict."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
    return write_entry(path, buf.getvalue(), to_plain(meta))


def read_meta(path: Path) -> dict[str, Any]:
    """The sidecar of checkpoint ``path`` (BenchError if missing or unreadable)."""
    try:
        return read_sidecar(path)
    except DamagedEntry as exc:
        raise BenchError(f"checkpoint {exc}; delete it to retrain") from None


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verified ``(state_dict, sidecar)``; a missing sidecar or a sha256 mismatch is a :class:`BenchError`."""
    try:
        data, meta = read_entry(path)
    except DamagedEntry as exc:
        raise BenchError(f"checkpoint {exc}; delete it to retrain") from None
    try:  # verified bytes can still be hostile or cut short (a sidecar rewritten to match them)
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (a refused global), ValueError (negative seek), ...
        first = (str(exc).strip().splitlines() or [""])[0]
        raise BenchError(f"checkpoint {path} cannot be read as a state dict ({type(exc).__name__}: "
                         f"{first[:160]}); delete it (and its .json sidecar) to retrain") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise BenchError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict of tensors; "
                         "delete it (and its .json sidecar) to retrain")
    return state, meta


def recorded_card(meta: dict[str, Any]) -> ModelCard | None:
    """The card a sidecar records, rebuilt as a :class:`ModelCard` so that fields added to the
    card later (with defaults that keep the old behaviour) do not invalidate older checkpoints."""
    try:
        return build_dataclass(ModelCard, meta.get("card") or {}, where="zoo card")
    except BenchError:
        return None
