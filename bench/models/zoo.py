"""The shipped model zoo: ``bench/zoo/<name>.pt`` + ``<name>.json`` (package data).

Each sidecar records the card, the data config, the exact command, the seed, the measured test
accuracy and spike rates, the training time and versions, and the checkpoint's sha256.
``snnxai train --zoo`` rewrites all of them (and ``README.md`` there) with
:func:`bench.models.load.train_zoo`. The zoo is a :class:`bench.store.ContentStore` keyed by
model name. A zoo checkpoint is used only when its recorded card, data config and seed equal
the current ones; otherwise :func:`bench.models.load_model` falls back to the cache (with a
warning). This module only reads and writes zoo files: it imports nothing that trains or loads.
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path
from typing import Any

import torch

from bench.config import to_plain
from bench.models.cache import read_meta, recorded_card, save_checkpoint, training_meta
from bench.models.card import ModelCard, init_source, needs_twin
from bench.registry import MODELS
from bench.store import ContentStore

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
ZOO_SEED = 0


def _depth(card: ModelCard) -> int:
    """How many trained models ``card``'s weights derive from (its ANN twin for a conversion or a
    twin initialisation, the model named by ``train.init``, recursively)."""
    sources = [n for n in (card.twin if needs_twin(card) else None, init_source(card)) if n]
    return max((1 + _depth(MODELS.get(n).obj) for n in sources), default=0)


def zoo_names() -> list[str]:
    """Shipped models, in training order: every model after the models its weights start from
    (ANN twins before the converted and twin-initialised SNNs, the static SNN before the one
    fine-tuned from it on moving frames), then ANNs first, then by name."""
    entries = [e for e in MODELS.entries() if in_zoo(e.spec)]
    return [e.name for e in sorted(entries, key=lambda e: (_depth(e.obj), e.spec.kind != "ann", e.name))]


#: the data families whose models the zoo ships (besides the moving-frames models)
ZOO_FAMILIES = ("shapes", "digits")


def in_zoo(card: ModelCard) -> bool:
    """Whether the zoo ships ``card``'s weights: every card of a shipped data family and the
    frames models (the events models are trained on demand)."""
    return card.dataset in ZOO_FAMILIES or card.encoding == "frames"


def base_name(card: ModelCard) -> str | None:
    """The card whose recipe ``card`` trains on another data family: a zoo card named
    ``<base>_<dataset>`` (e.g. ``vgg5_snn_t8_digits``) whose base is registered for another
    dataset; None for any other card."""
    suffix = f"_{card.dataset}"
    base = card.name.removesuffix(suffix)
    if base == card.name or base not in MODELS:
        return None
    return base if MODELS.get(base).spec.dataset != card.dataset else None


def zoo_store(root: Path | None = None) -> ContentStore:
    """The shipped zoo (or a zoo being written at ``root``): entries ``<root>/<name>.pt``."""
    return ContentStore(root or ZOO_DIR, ".pt", fanout=False)


def zoo_path(name: str, root: Path | None = None) -> Path:
    return zoo_store(root).path(name)


def zoo_card_for(card: ModelCard, dataset: str) -> ModelCard:
    """The card whose zoo entry holds ``card`` trained on ``dataset``: ``card`` itself, or the
    registered zoo card that trains ``card``'s recipe on that data family (its ``base`` metadata
    names ``card``, e.g. ``vgg5_snn_t8_digits`` for ``vgg5_snn_t8`` on ``digits``). So a suite
    switches family with ``--set data.dataset=digits`` and keeps its model names, which is what
    lets rankings on two families be compared model by model."""
    if dataset != card.dataset:
        for entry in MODELS.entries():
            if in_zoo(entry.spec) and base_name(entry.spec) == card.name and entry.spec.dataset == dataset:
                return entry.obj
    return card


def zoo_match(card: ModelCard, data: dict[str, Any], seed: int, root: Path | None = None) -> Path | None:
    """The zoo checkpoint of ``card`` (or of :func:`zoo_card_for` its data family) if it exists
    and was trained exactly as asked, else None."""
    card = zoo_card_for(card, str(data.get("dataset")))
    path = zoo_path(card.name, root)
    if not path.exists():
        return None
    meta = read_meta(path)
    if recorded_card(meta) != card or meta.get("data") != to_plain(data) or meta.get("seed") != seed:
        warnings.warn(f"zoo checkpoint {path.name} was trained with a different card, data or seed; "
                      f"ignoring it", stacklevel=3)
        return None
    return path


def write_zoo_entry(model: torch.nn.Module, card: ModelCard, data: dict[str, Any], report: dict[str, Any],
                    command: str, root: Path | None = None) -> dict[str, Any]:
    """Write one zoo checkpoint and its sidecar; returns the sidecar dict."""
    meta = training_meta(card, data, ZOO_SEED, command, report, machine=platform.machine())
    return save_checkpoint(model.state_dict(), zoo_path(card.name, root), meta)


def readme(root: Path | None = None) -> str:
    """``bench/zoo/README.md``: a table of the shipped checkpoints, written from their sidecars."""
    root = root or ZOO_DIR
    rows = ["| model | data | test accuracy | wall time (s) | CPU time (s) | threads | spike rates | size (KB) "
            "| sha256 |", "|---|---|---|---|---|---|---|---|---|"]
    for name in zoo_names():
        path = zoo_path(name, root)
        if not path.exists():
            continue
        m = read_meta(path)
        rates = ", ".join(f"{k} {v:.3f}" for k, v in m.get("spike_rates", {}).items()) or "-"
        cpu = f"{m['train_cpu_s']:.0f}" if "train_cpu_s" in m else "?"
        rows.append(f"| `{name}` | {m['data']['dataset']} | {m['test_accuracy']:.4f} (n={m['n_test']}) | "
                    f"{m['train_time_s']:.0f} | {cpu} | {m.get('threads', '?')} | {rates} | {m['bytes'] / 1024:.0f} | "
                    f"`{m['sha256'][:12]}` |")
    commands = sorted({read_meta(zoo_path(n, root))["command"] for n in zoo_names() if zoo_path(n, root).exists()})
    return ("# Shipped model zoo\n\n"
            "Machine-written by `snnxai train --zoo` (do not edit). Each `<name>.pt` is a state dict\n"
            "loaded with `torch.load(weights_only=True)` after checking the sha256 recorded in\n"
            "`<name>.json`, which also holds the card, data config, seed, per-epoch history and versions.\n"
            "Accuracy: the whole default test split of the model's data (`shapes`: headroom layout,\n"
            "32x32, seed 0; `digits`: 32x32, seed 0, scenes of the held-out test digit images); spike\n"
            "rates: mean spikes per neuron per time step on its first 200 samples. Times cover\n"
            "training plus the per-epoch evaluation (converted models: the conversion only; SNNs\n"
            "with `init = \"twin\"`: the fine-tuning from the ANN twin's weights; the ANN is trained\n"
            "separately, first): wall\n"
            "clock with the thread count shown, and the process's CPU seconds -- on a shared machine\n"
            "the wall clock also counts other jobs' time, the CPU time is what the training itself used.\n\n"
            + "\n".join(rows) + "\n\nCommands: " + ", ".join(f"`{c}`" for c in commands) + "\n")

