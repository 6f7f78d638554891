"""Plan a run: resolve every name of a suite, decide the cells, and fail early.

:func:`make_plan` does everything that can fail because of the user's input (unknown or
incompatible names, a missing data folder) before the runner writes a single file. It also
decides what is skipped, with a reason: a method that cannot run on a model (an SNN-only
method on an ANN), a metric whose needs the dataset cannot meet (no masks on CIFAR-10).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.config import config_hash, to_plain
from bench.errors import BenchError
from bench.registry import METHODS, METRICS

#: metadata of methods and metrics copied into run.json (the report reads only run.json)
METHOD_META = ("summary", "model_kind", "temporal", "needs_grad", "needs_label", "version",
               "reference", "baseline")
METRIC_META = ("summary", "category", "higher_is_better", "needs", "output", "per_timestep",
               "scope", "version", "reference")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One unit of work and storage: a probed model and a method ("" = the model-scope
    metrics of that model). ``method_model`` is the model the method runs on."""

    model: str
    method: str
    method_model: str


@dataclasses.dataclass
class Plan:
    suite: Any
    dataset: Any
    positions: list[int]          # dataset indices of the run's samples, in order
    cards: dict[str, Any]         # probed models and method models
    cells: list[Cell]
    skipped_cells: list[dict]
    metric_skips: dict[str, str]  # metric -> why the dataset cannot feed it
    versions: dict[str, Any]
    config_hash: str
    run_hash: str

    @property
    def run_id(self) -> str:
        return f"{self.suite.run.name}-{self.run_hash}"

    def metrics(self, scope: str) -> list[str]:
        """Metrics of ``scope`` ("explanation" or "model") that this dataset can feed."""
        return [k for k in self.suite.metrics if k not in self.metric_skips
                and METRICS.get(k).meta.get("scope", "explanation") == scope]

    def manifest(self, shard: Any, command: str, sample_ids: list[int], positions: list[int]) -> dict:
        """The static part of run.json for this (shard of the) run."""
        from bench.provenance import device_info, git_state, package_versions

        ds = self.dataset
        return {
            "run_id": self.run_id, "run_hash": self.run_hash, "config_hash": self.config_hash,
            "suite": self.suite.run.name, "command": command, "config": self.suite.plain(),
            "versions": self.versions, "git": git_state(), "packages": package_versions(),
            "device": device_info(self.suite.run.device), "seed": self.suite.run.seed,
            "dataset": {"name": self.suite.data.dataset, "split": self.suite.data.split,
                        "fingerprint": ds.fingerprint(), "n_samples": len(self.positions),
                        "num_classes": ds.num_classes, "class_names": list(ds.class_names),
                        "image_size": ds.image_size, "has_masks": ds.has_masks,
                        "has_boxes": ds.has_boxes},
            "models": list(self.suite.models),
            # run.json is written with sorted keys; these keep the suite's order for the report
            "order": {"methods": list(self.suite.methods), "metrics": list(self.suite.metrics)},
            "cells": [dataclasses.asdict(c) for c in self.cells],
            "skipped_cells": self.skipped_cells,
            "skipped_metrics": [{"model": "", "method": "", "metric": k, "reason": r}
                                for k, r in self.metric_skips.items()],
            "shard": {"index": shard.index, "count": shard.count},
            "positions": positions, "sample_ids": sample_ids,
        }


def _meta(entry: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    out = {k: entry.meta.get(k) for k in keys}
    if "needs" in out:
        out["needs"] = sorted(out["needs"] or ())
    if "scope" in out:
        out["scope"] = out["scope"] or "explanation"
    if "baseline" in out:
        out["baseline"] = bool(out["baseline"])
    return to_plain(out)


def metric_skip_reason(entry: Any, ds: Any, dataset: str) -> str | None:
    """Why ``ds`` cannot feed metric ``entry`` (None if it can)."""
    needs = set(entry.meta["needs"])
    if "mask" in needs and not ds.has_masks:
        return f"dataset {dataset!r} has no object masks"
    if "box" in needs and not ds.has_boxes:
        return f"dataset {dataset!r} has no bounding boxes"
    return None


def method_model_for(entry: Any, card: Any) -> tuple[str | None, str]:
    """The model ``entry`` runs on when ``card``'s model is probed, or (None, reason)."""
    from bench.explain import check_compatible
    from bench.models import get_card

    kind = entry.meta["model_kind"]
    if kind == "ann" and card.kind == "snn":
        if not card.twin:
            return None, f"{entry.name!r} runs on the ANN twin and {card.name!r} names none"
        twin = get_card(card.twin)
        check_compatible(entry, twin)
        return twin.name, ""
    try:
        check_compatible(entry, card)
    except BenchError as exc:
        return None, str(exc)
    return card.name, ""


def check_fits(card: Any, ds: Any, dataset: str) -> None:
    """A model can only be trained on / evaluated with data of its input shape and classes."""
    want = (card.num_classes, card.in_channels, card.input_size)
    have = (ds.num_classes, ds.channels, ds.image_size)
    if want != have:
        raise BenchError(f"model {card.name!r} takes {want[1]}x{want[2]}x{want[2]} images of {want[0]} "
                         f"classes; dataset {dataset!r} has {have[1]}x{have[2]}x{have[2]} images of "
                         f"{have[0]} classes")


def make_plan(suite: Any) -> Plan:
    """Resolve ``suite`` (:class:`bench.suite.Suite`) into a :class:`Plan`; writes nothing."""
    from bench.data import get_dataset
    from bench.models import get_card

    ds = get_dataset(suite.data.dataset, suite.data.split, suite.data.params)
    n = len(ds) if suite.run.n_samples == 0 else min(suite.run.n_samples, len(ds))
    if n == 0:
        raise BenchError(f"dataset {suite.data.dataset!r} split {suite.data.split!r} is empty")
    cards = {m: get_card(m) for m in suite.models}
    cells, skipped = [], []
    for m in suite.models:
        for meth in suite.methods:
            mm, reason = method_model_for(METHODS.get(meth), cards[m])
            if mm is None:
                skipped.append({"model": m, "method": meth, "metric": "", "reason": reason})
                continue
            cards.setdefault(mm, get_card(mm))
            cells.append(Cell(m, meth, mm))
    for card in cards.values():
        check_fits(card, ds, suite.data.dataset)
    metric_skips = {k: r for k in suite.metrics
                    if (r := metric_skip_reason(METRICS.get(k), ds, suite.data.dataset))}
    if any(METRICS.get(k).meta.get("scope", "explanation") == "model"
           for k in suite.metrics if k not in metric_skips):
        cells += [Cell(m, "", "") for m in suite.models]
    versions = {
        "methods": {k: _meta(METHODS.get(k), METHOD_META) for k in suite.methods},
        "metrics": {k: _meta(METRICS.get(k), METRIC_META) for k in suite.metrics},
        "models": {k: to_plain(c) for k, c in sorted(cards.items())},
    }
    chash = suite.config_hash()
    return Plan(suite=suite, dataset=ds, positions=list(range(n)), cards=cards, cells=cells,
                skipped_cells=skipped, metric_skips=metric_skips, versions=versions,
                config_hash=chash, run_hash=config_hash({"config": chash, "versions": versions}))
