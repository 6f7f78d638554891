"""The shipped model zoo: ``bench/zoo/<name>.pt`` + ``<name>.json`` (package data).

Each sidecar records the card, the data config, the exact command, the seed, the measured test
accuracy and spike rates, the training time and versions, and the checkpoint's sha256.
``snnxai train --zoo`` rewrites all of them (and ``README.md`` there) with :func:`train_zoo`.
A zoo checkpoint is used only when its recorded card, data config and seed equal the current
ones; otherwise :func:`bench.models.load_model` falls back to the cache (with a warning).
"""

from __future__ import annotations

import platform
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from bench.config import build_dataclass, to_plain
from bench.errors import BenchError
from bench.models.card import ModelCard
from bench.models.cache import read_meta, save_checkpoint
from bench.registry import MODELS

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"
ZOO_SEED = 0


def zoo_names() -> list[str]:
    """Shipped models, in training order (converted models after the ANNs they come from)."""
    entries = MODELS.entries(zoo=True)
    return [e.name for e in sorted(entries, key=lambda e: (e.meta.get("source") == "converted", e.name))]


def zoo_path(name: str, root: Path | None = None) -> Path:
    return (root or ZOO_DIR) / f"{name}.pt"


def zoo_match(card: ModelCard, data: dict[str, Any], seed: int, root: Path | None = None) -> Path | None:
    """The zoo checkpoint of ``card`` if it exists and was trained exactly as asked, else None."""
    path = zoo_path(card.name, root)
    if not path.exists():
        return None
    meta = read_meta(path)
    if recorded_card(meta) != card or meta.get("data") != to_plain(data) or meta.get("seed") != seed:
        warnings.warn(f"zoo checkpoint {path.name} was trained with a different card, data or seed; "
                      f"ignoring it", stacklevel=3)
        return None
    return path


def recorded_card(meta: dict[str, Any]) -> ModelCard | None:
    """The card a sidecar records, rebuilt as a :class:`ModelCard` so that fields added to the
    card later (with defaults that keep the old behaviour) do not invalidate older checkpoints."""
    try:
        return build_dataclass(ModelCard, meta.get("card") or {}, where="zoo card")
    except BenchError:
        return None


def write_zoo_entry(model: torch.nn.Module, card: ModelCard, data: dict[str, Any], report: dict[str, Any],
                    command: str, root: Path | None = None) -> dict[str, Any]:
    """Write one zoo checkpoint and its sidecar; returns the sidecar dict."""
    meta = {"name": card.name, "card": card, "data": data, "seed": ZOO_SEED, "command": command,
            "torch_version": torch.__version__, "python_version": platform.python_version(),
            "machine": platform.machine(), **report}
    return save_checkpoint(model.state_dict(), zoo_path(card.name, root), meta)


def readme(root: Path | None = None) -> str:
    """``bench/zoo/README.md``: a table of the shipped checkpoints, written from their sidecars."""
    root = root or ZOO_DIR
    rows = ["| model | test accuracy | wall time (s) | CPU time (s) | threads | spike rates | size (KB) | sha256 |",
            "|---|---|---|---|---|---|---|---|"]
    for name in zoo_names():
        path = zoo_path(name, root)
        if not path.exists():
            continue
        m = read_meta(path)
        rates = ", ".join(f"{k} {v:.3f}" for k, v in m.get("spike_rates", {}).items()) or "-"
        cpu = f"{m['train_cpu_s']:.0f}" if "train_cpu_s" in m else "?"
        rows.append(f"| `{name}` | {m['test_accuracy']:.4f} (n={m['n_test']}) | {m['train_time_s']:.0f} | {cpu} | "
                    f"{m.get('threads', '?')} | {rates} | {m['bytes'] / 1024:.0f} | `{m['sha256'][:12]}` |")
    commands = sorted({read_meta(zoo_path(n, root))["command"] for n in zoo_names() if zoo_path(n, root).exists()})
    return ("# Shipped model zoo\n\n"
            "Machine-written by `snnxai train --zoo` (do not edit). Each `<name>.pt` is a state dict\n"
            "loaded with `torch.load(weights_only=True)` after checking the sha256 recorded in\n"
            "`<name>.json`, which also holds the card, data config, seed, per-epoch history and versions.\n"
            "Accuracy: the whole `shapes` test split (32x32, seed 0); spike rates: mean spikes per\n"
            "neuron per time step on its first 200 samples. Times cover training plus the per-epoch\n"
            "evaluation (converted models: the conversion only; the ANN is trained separately): wall\n"
            "clock with the thread count shown, and the process's CPU seconds -- on a shared machine\n"
            "the wall clock also counts other jobs' time, the CPU time is what the training itself used.\n\n"
            + "\n".join(rows) + "\n\nCommands: " + ", ".join(f"`{c}`" for c in commands) + "\n")


def train_zoo(names: list[str] | None, command: str, *, progress: bool = True,
              log: Callable[[str], None] = print, root: Path | None = None) -> list[dict[str, Any]]:
    """Retrain the named (default: all) zoo models into ``root`` and rewrite its README."""
    from bench.models.load import get_card, load_model
    from bench.models.training import data_config, train

    root = root or ZOO_DIR
    out = []
    for name in names or zoo_names():
        card = get_card(name)
        data = data_config(card)
        model, report = train(card, seed=ZOO_SEED, progress=progress, log=log,
                              twin_loader=lambda n: load_model(n, zoo_dir=root, train_if_missing=False))
        meta = write_zoo_entry(model, card, data, report, command, root)
        log(f"wrote {zoo_path(name, root)} (test accuracy {meta['test_accuracy']:.4f}, "
            f"{meta['train_time_s']:.0f} s, {meta['bytes'] / 1024:.0f} KB)")
        out.append(meta)
    (root / "README.md").write_text(readme(root))
    return out
