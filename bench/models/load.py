"""Cards -> models -> trained checkpoints: the model side's public entry points.

Resolution order of :func:`load_model_with_provenance` (and its thin wrapper :func:`load_model`):
the shipped zoo (``bench/zoo/<name>.pt``, if trained with the same card, data and seed), then
the user cache (``<cache>/models/<name>-<key>.pt``), else train it (progress bar) and cache it.
Checkpoints are always sha256-verified, and the loader reports where the weights came from
(:class:`CheckpointProvenance`), so nobody resolves the zoo a second time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from bench.errors import BenchError
from bench.models.build import build_model, get_card
from bench.models.cache import (
    cache_key,
    cache_path,
    load_checkpoint,
    read_meta,
    recorded_card,
    save_checkpoint,
    training_meta,
)
from bench.models.card import ModelCard, init_source, needs_twin
from bench.models.zoo import ZOO_DIR, ZOO_SEED, readme, write_zoo_entry, zoo_card_for, zoo_match, zoo_names, zoo_path
from bench.store import state_digest, write_atomic


@dataclasses.dataclass(frozen=True)
class CheckpointProvenance:
    """Where a loaded model's weights came from.

    ``source`` "zoo": ``sha256`` is the verified sidecar's hash of the shipped ``.pt`` file and
    ``path`` is ``"bench/zoo/<file>"`` (the absolute file for a zoo written elsewhere).
    ``source`` "state_dict": the weights came from the checkpoint cache (or were just trained);
    ``sha256`` is :func:`bench.store.state_digest` of the loaded model and ``path`` is None
    (the cache location is machine-specific). ``file`` is the checkpoint file actually read.
    ``source`` "user": a user's own model (:mod:`bench.adapters`); ``sha256`` as for
    "state_dict", ``path`` the checkpoint as the user named it (None: the built weights).
    """

    sha256: str
    path: str | None
    source: Literal["zoo", "state_dict", "user"]
    file: Path

    def as_dict(self) -> dict[str, str | None]:
        """The record ``run.json`` keeps per model: ``{"sha256", "path", "source"}``."""
        return {"sha256": self.sha256, "path": self.path, "source": self.source}


def with_epochs(card: ModelCard, epochs: int | None) -> ModelCard:
    """``card`` with its training recipe's epoch count replaced (part of the cache key)."""
    if epochs is None:
        return card
    if epochs < 1:
        raise BenchError(f"--epochs must be >= 1, got {epochs}")
    return dataclasses.replace(card, train=dataclasses.replace(card.train, epochs=epochs))


def _key(card: ModelCard, data: dict[str, Any], seed: int) -> str:
    twin = get_card(card.twin) if needs_twin(card) else None
    source = init_source(card)
    return cache_key(card, data, seed, twin, get_card(source) if source else None)


def trained_checkpoint(card: ModelCard, *, dataset: str | None = None, params: dict[str, Any] | None = None,
                       seed: int = 0, cache_dir: str | Path | None = None) -> Path | None:
    """The checkpoint :func:`load_model_with_provenance` would read for ``card`` (zoo first, then
    the cache), or None when it would have to train. Reads sidecars only: no weights, no training;
    a zoo entry trained on other data is skipped silently (the caller says why)."""
    import warnings

    from bench.models.build import data_config

    data = data_config(card, dataset, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = zoo_match(card, data, seed)
    if path is None:
        path = cache_path(card, _key(card, data, seed), cache_dir)
    return path if path.exists() else None


def ensure_trained(card: ModelCard, *, dataset: str | None = None, params: dict[str, Any] | None = None,
                   seed: int = 0, cache_dir: str | Path | None = None, force: bool = False,
                   progress: bool = True, log: Callable[[str], None] = print,
                   command: str = "", device: torch.device | str = "cpu") -> tuple[Path, dict[str, Any], bool]:
    """Train ``card`` into the cache unless its checkpoint exists. Returns ``(path, sidecar, trained)``."""
    from bench.models.build import data_config
    from bench.models.training import train

    data = data_config(card, dataset, params)
    key = _key(card, data, seed)
    path = cache_path(card, key, cache_dir)
    if path.exists() and not force:
        return path, read_meta(path), False
    model, report = train(card, dataset=dataset, params=params, seed=seed, progress=progress, log=log,
                          device=device,
                          twin_loader=lambda n: load_model(n, device, seed=seed, cache_dir=cache_dir,
                                                           dataset=dataset, params=params, progress=progress,
                                                           log=log),
                          # an init source is trained on its own data, not this model's
                          init_loader=lambda n: load_model(n, device, seed=seed, cache_dir=cache_dir,
                                                           progress=progress, log=log))
    meta = training_meta(card, data, seed, command or f"snnxai train {card.name} --seed {seed}", report, key=key)
    return path, save_checkpoint(model.state_dict(), path, meta), True


def load_model_with_provenance(name: str, device: torch.device | str = "cpu", *, train_if_missing: bool = True,
                               progress: bool = True, seed: int = 0, cache_dir: str | Path | None = None,
                               dataset: str | None = None, params: dict[str, Any] | None = None,
                               zoo_dir: Path | None = None, log: Callable[[str], None] = print,
                               ) -> tuple[nn.Module, CheckpointProvenance]:
    """A trained model in eval mode (zoo first, then the cache, else train and cache it) and
    where its weights came from."""
    from bench.models.build import data_config

    card = get_card(name)
    data = data_config(card, dataset, params)
    path = zoo_match(card, data, seed, zoo_dir)
    from_zoo = path is not None
    if path is None:
        path = cache_path(card, _key(card, data, seed), cache_dir)
        if not path.exists():
            if not train_if_missing:
                raise BenchError(f"no trained checkpoint for {name} (not in the zoo, not at {path}); "
                                 f"run `snnxai train {name}`")
            log(f"{name}: no checkpoint found, training it (cached at {path})")
            path, _, _ = ensure_trained(card, dataset=dataset, params=params, seed=seed, cache_dir=cache_dir,
                                        progress=progress, log=log, device=device)
    state, meta = load_checkpoint(path)
    # a zoo entry may hold this card's recipe trained on another data family (zoo_card_for)
    if recorded_card(meta) != (zoo_card_for(card, data["dataset"]) if from_zoo else card):
        raise BenchError(f"checkpoint {path} was written for a different {name} card; delete it to retrain")
    model = build_model(card)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise BenchError(f"checkpoint {path} does not fit {name}: {str(exc).splitlines()[0]}") from None
    if from_zoo:
        shown = f"bench/zoo/{path.name}" if path.parent == ZOO_DIR else str(path)
        prov = CheckpointProvenance(meta["sha256"], shown, "zoo", path)
    else:  # hashed on CPU before the move: the same bytes wherever the model then runs
        prov = CheckpointProvenance(state_digest(model), None, "state_dict", path)
    return model.to(device).eval(), prov


def load_model(name: str, device: torch.device | str = "cpu", *, train_if_missing: bool = True,
               progress: bool = True, seed: int = 0, cache_dir: str | Path | None = None,
               dataset: str | None = None, params: dict[str, Any] | None = None,
               zoo_dir: Path | None = None, log: Callable[[str], None] = print) -> nn.Module:
    """A trained model in eval mode: :func:`load_model_with_provenance` without the provenance."""
    return load_model_with_provenance(name, device, train_if_missing=train_if_missing, progress=progress,
                                      seed=seed, cache_dir=cache_dir, dataset=dataset, params=params,
                                      zoo_dir=zoo_dir, log=log)[0]


def load_model_file(name: str, path: str | Path, device: torch.device | str = "cpu",
                    ) -> tuple[nn.Module, CheckpointProvenance]:
    """Model ``name`` in eval mode with the weights of the checkpoint file ``path`` (``--checkpoint``):
    this project's state dict or the SAM reference code's format, detected and checked key by key
    (:mod:`bench.models.reference_ckpt`). Provenance: source "user", ``path`` as given."""
    from bench.models.reference_ckpt import load_into

    model = build_model(name)
    load_into(model, path)
    return model.to(device).eval(), CheckpointProvenance(state_digest(model), str(path), "user", Path(path))


def train_zoo(names: list[str] | None, command: str, *, progress: bool = True,
              log: Callable[[str], None] = print, root: Path | None = None) -> list[dict[str, Any]]:
    """Retrain the named (default: all) zoo models into ``root`` and rewrite its README.

    Converted models load their ANN twin from the zoo being written (never train it)."""
    from bench.models.build import data_config
    from bench.models.training import train

    root = root or ZOO_DIR
    out = []
    for name in names or zoo_names():
        card = get_card(name)
        data = data_config(card)
        shipped = lambda n: load_model(n, zoo_dir=root, train_if_missing=False)  # noqa: E731
        model, report = train(card, seed=ZOO_SEED, progress=progress, log=log, twin_loader=shipped,
                              init_loader=shipped)
        meta = write_zoo_entry(model, card, data, report, command, root)
        log(f"wrote {zoo_path(name, root)} (test accuracy {meta['test_accuracy']:.4f}, "
            f"{meta['train_time_s']:.0f} s, {meta['bytes'] / 1024:.0f} KB)")
        out.append(meta)
    write_atomic(root / "README.md", readme(root))
    return out
