"""Checkpoint files: a ``.pt`` state dict plus a ``.json`` sidecar carrying its sha256.

The same format serves the user cache and the shipped zoo (``bench/zoo/<name>.pt``):

* cache directory: the ``cache_dir`` argument, else env ``SNNXAI_CACHE``, else ``~/.cache/snnxai``;
  a cached checkpoint lives at ``<dir>/models/<name>-<key>.pt``;
* key: :func:`bench.config.config_hash` of (card, data config, training config -- part of the
  card --, seed, code version), so any change to what would be trained is a different file;
* writes are atomic (temp file in the same folder + ``os.replace``), the sidecar last;
* reads check the file's sha256 against the sidecar and use ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from bench.config import config_hash, to_plain
from bench.errors import BenchError
from bench.models.card import ModelCard

#: Bump when model or training code changes what a checkpoint of the same card would hold.
CODE_VERSION = "1"


def cache_dir(override: str | Path | None = None) -> Path:
    """Where cached checkpoints live (argument > ``$SNNXAI_CACHE`` > ``~/.cache/snnxai``)."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("SNNXAI_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snnxai"


def cache_key(card: ModelCard, data: dict[str, Any], seed: int, twin: ModelCard | None = None) -> str:
    """Stable hash of everything that determines a trained checkpoint (``twin``: the source of a conversion)."""
    return config_hash({"card": card, "data": data, "seed": seed, "twin": twin, "code": CODE_VERSION})


def cache_path(card: ModelCard, key: str, root: str | Path | None = None) -> Path:
    return cache_dir(root) / "models" / f"{card.name}-{key}.pt"


def sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are shared read-only files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(state: dict[str, torch.Tensor], path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``state`` to ``path`` and ``meta`` + sha256 + size to its sidecar; returns the sidecar dict."""
    _atomic_write(path, lambda f: torch.save({k: v.detach().cpu() for k, v in state.items()}, f))
    info = {**to_plain(meta), "sha256": sha256_file(path), "bytes": path.stat().st_size}
    text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    _atomic_write(sidecar(path), lambda f: f.write(text.encode()))
    return info


def read_meta(path: Path) -> dict[str, Any]:
    """The sidecar of checkpoint ``path`` (BenchError if missing or unreadable)."""
    side = sidecar(path)
    try:
        return json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"checkpoint {path} has no readable sidecar {side.name} ({exc}); delete it to retrain") from None


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verified ``(state_dict, sidecar)``; a sha256 mismatch is a :class:`BenchError`."""
    meta = read_meta(path)
    if sha256_file(path) != meta.get("sha256"):
        raise BenchError(f"checkpoint {path} is corrupted or was modified (sha256 mismatch); delete it to retrain")
    return torch.load(path, map_location="cpu", weights_only=True), meta
