"""Plan a run: resolve every name of a suite, decide the cells, and fail early.

:func:`make_plan` does everything that can fail because of the user's input (unknown or
incompatible names, a missing data folder) before the runner writes a single file. It also
decides what is skipped, with a reason: a method that cannot run on a model (an SNN-only
method on an ANN, an ``ann_*`` method on an SNN without a twin), a metric whose needs the
dataset cannot meet (no masks on CIFAR-10), a model-scope metric that needs a model the probed
one lacks (the transfer attack's source: a user's own SNN has no twin).
Everything the runner needs about a cell or a metric is resolved here, once: the model a
method runs on, its target layer, each metric's function, params, sample limit and needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.config import config_hash, to_plain
from bench.errors import BenchError
from bench.registry import METHODS, METRICS
from bench.variants import base_name

if TYPE_CHECKING:
    from torch import nn

    from bench.adapters import AdaptedSNN
    from bench.data.base import ImageDataset
    from bench.models.card import ModelCard
    from bench.models.load import CheckpointProvenance
    from bench.pipeline.shard import Shard
    from bench.registry import Entry
    from bench.suite import RunConfig, Suite
    from methods.postprocess import PostprocessConfig
    from metrics.base import Scores


@dataclasses.dataclass(frozen=True)
class Cell:
    """One unit of work and storage: a probed model and a method ("" = the model-scope
    metrics of that model). ``method_model`` is the model the method runs on."""

    model: str
    method: str
    method_model: str
    layer: str = ""   # the method's target layer on method_model ("" = none)

    def record(self) -> dict[str, str]:
        """The cell's identity as run.json lists it."""
        return {"model": self.model, "method": self.method, "method_model": self.method_model}


@dataclasses.dataclass(frozen=True)
class CellFilter:
    """``snnxai run --only``: compute only some cells of a suite (a submission's new cells).

    ``methods`` / ``models``: the names given with ``method=`` / ``model=`` (empty: no filter
    of that kind). A cell is selected when it matches one name of every kind given; a
    model-scope cell (method "") has no method, so it belongs to ``model=`` filters only.
    The filter is recorded in run.json, never hashed: the selected cells are the suite's
    cells, computed with the suite's config and samples, so they are comparable with a run
    of the whole suite (``snnxai compare``)."""

    methods: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.methods or self.models)

    def selects(self, model: str, method: str) -> bool:
        if self.models and model not in self.models:
            return False
        return not self.methods or method in self.methods

    def record(self) -> dict[str, list[str]]:
        return {"methods": list(self.methods), "models": list(self.models)}

    @classmethod
    def parse(cls, items: list[str] | tuple[str, ...]) -> CellFilter:
        """``["method=sam", "model=vgg5_snn_t8"]`` -> a filter (names checked later, against
        the suite and the registries, by :meth:`include`)."""
        methods, models = [], []
        for text in items:
            kind, sep, name = text.partition("=")
            if not sep or kind.strip() not in ("method", "model") or not name.strip():
                raise BenchError(f"--only expects method=NAME or model=NAME, got {text!r}")
            (methods if kind.strip() == "method" else models).append(name.strip())
        return cls(tuple(dict.fromkeys(methods)), tuple(dict.fromkeys(models)))

    def include(self, suite: Suite) -> Suite:
        """``suite`` with every filtered name it lacks added: a method with its default
        params (as ``--set methods.NAME={}`` would add it; the config hash is canonical JSON, so
        the two give the same run id), a model at the end of ``models``. An unknown name is a
        BenchError with the registry's "did you mean"."""
        from bench.registry import MODELS

        methods = dict(suite.methods)
        for name in self.methods:
            if name not in methods:
                methods[name] = METHODS.get(name).make_params()
        for name in self.models:
            if name not in suite.user_models:
                MODELS.get(name)
        models = suite.models + tuple(m for m in self.models if m not in suite.models)
        return dataclasses.replace(suite, methods=methods, models=models)


@dataclasses.dataclass(frozen=True)
class PlannedMetric:
    """A metric as the runner scores it. fn: the registered function, called as
    ``fn(ScoreInput, params)`` (scope "explanation") or ``fn(ModelScoreInput, params)`` (scope
    "model"). limit: score only the run's first ``limit`` samples (None = all). attacked: it
    compares maps of attacked inputs and records them in the memo (the gallery shows them)."""

    name: str
    fn: Callable[..., Scores]
    params: object
    limit: int | None
    needs: frozenset[str]
    per_timestep: bool
    attacked: bool


@dataclasses.dataclass(frozen=True)
class Loading:
    """How the run's models are loaded, resolved from the suite once: the device, the models'
    training seed, the cache root ("" = the default), the data they were trained on
    (:meth:`bench.suite.DataConfig.training_data`) and the ``--checkpoint`` weights files by name."""

    device: str
    model_seed: int
    cache_dir: str
    train_dataset: str
    train_params: dict[str, Any] | None
    checkpoints: dict[str, str]

    @classmethod
    def of(cls, suite: Suite) -> Loading:
        dataset, params = suite.data.training_data()
        return cls(device=suite.run.device, model_seed=suite.run.model_seed, cache_dir=suite.run.cache_dir,
                   train_dataset=dataset, train_params=params, checkpoints=dict(suite.checkpoints))


@dataclasses.dataclass
class Plan:
    """A suite resolved for the runner. ``suite`` is kept for the manifest (the resolved config,
    the order of names) and the planner; what the code below the planner reads (data, models,
    caches, cells) is in the typed fields: ``run``, ``loading``, ``postprocess``, ``models``."""

    suite: Suite
    dataset: ImageDataset
    positions: list[int]          # dataset indices of the run's samples, in order
    cards: dict[str, ModelCard]   # probed models and method models
    cells: list[Cell]
    skipped_cells: list[dict]
    metric_skips: dict[str, str]  # metric -> why the dataset cannot feed it
    versions: dict[str, dict[str, object]]   # hashed into run_hash; run.json's "versions"
    config_hash: str
    run_hash: str
    method_params: dict[str, object]           # method -> its params dataclass (None: none)
    explanation_metrics: list[PlannedMetric]   # scored on every method's maps, suite order
    model_metrics: list[PlannedMetric]         # scored once per probed model
    only: CellFilter = CellFilter()            # --only: the cells were filtered (not hashed)
    #: the suite's user models, adapted and probed (bench.adapters), and their weights' provenance
    user_models: dict[str, tuple[AdaptedSNN, CheckpointProvenance]] = dataclasses.field(default_factory=dict)
    #: model-scope metrics a probed model cannot be scored on, as run.json's skip records
    #: ({"model", "method": "", "metric", "reason"}; :func:`model_metric_skip_reason`)
    skipped_model_metrics: list[dict] = dataclasses.field(default_factory=list)

    @property
    def run(self) -> RunConfig:
        """Seed, device, batch size, samples, target policy, examples, cache root."""
        return self.suite.run

    @property
    def loading(self) -> Loading:
        return Loading.of(self.suite)

    @property
    def postprocess(self) -> PostprocessConfig:
        return self.suite.postprocess

    @property
    def models(self) -> tuple[str, ...]:
        """The probed models, in suite order."""
        return self.suite.models

    def with_cache_dir(self, cache_dir: str) -> Plan:
        """This plan with another cache root (not part of any number or of the run id)."""
        run = dataclasses.replace(self.suite.run, cache_dir=cache_dir)
        return dataclasses.replace(self, suite=dataclasses.replace(self.suite, run=run))

    @property
    def data_name(self) -> tuple[str, str]:
        """(dataset name, split) of the evaluated data."""
        return self.suite.data.dataset, self.suite.data.split

    def model_metrics_for(self, model: str) -> list[PlannedMetric]:
        """The model-scope metrics scored on probed model ``model`` (its skips left out)."""
        skip = {s["metric"] for s in self.skipped_model_metrics if s["model"] == model}
        return [p for p in self.model_metrics if p.name not in skip]

    @property
    def run_id(self) -> str:
        return f"{self.suite.run.name}-{self.run_hash}"

    @property
    def gallery_metric(self) -> PlannedMetric | None:
        """The first attacked metric: the clean-vs-attacked gallery shows its attacked inputs."""
        return next((m for m in self.explanation_metrics if m.attacked), None)

    def manifest(self, shard: Shard, command: str, sample_ids: list[int], positions: list[int]) -> dict:
        """The static part of run.json for this (shard of the) run."""
        from bench.provenance import device_info, git_state, package_versions, plugin_record

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
            # the specs' report roles (not hashed: no number depends on them)
            "roles": {"methods": {k: METHODS.get(base_name(k)).record("role") for k in self.suite.methods},
                      "metrics": {k: METRICS.get(base_name(k)).record("role") for k in self.suite.metrics}},
            "cells": [c.record() for c in self.cells],
            "skipped_cells": self.skipped_cells,
            "skipped_metrics": [{"model": "", "method": "", "metric": k, "reason": r}
                                for k, r in self.metric_skips.items()] + self.skipped_model_metrics,
            "shard": {"index": shard.index, "count": shard.count},
            "positions": positions, "sample_ids": sample_ids,
            "suite_version": self.suite.version,   # None when the suite declares none
            # --only: which cells this run computes (absent without a filter)
            **({"only": self.only.record()} if self.only else {}),
            # the entry-point plugins behind the run's names, with their versions (absent without any)
            **({"plugins": plugins} if (plugins := plugin_record(self.plugin_uses())) else {}),
        }

    def plugin_uses(self) -> dict[str, list[str]]:
        """The registry names the run uses, by registry (variants by their base name; the
        suite's own user models are no registry's)."""
        return {"methods": sorted({base_name(k) for k in self.suite.methods}),
                "metrics": sorted({base_name(k) for k in self.suite.metrics}),
                "models": sorted(m for m in self.cards if m not in self.user_models),
                "datasets": [self.suite.data.dataset]}


def metric_skip_reason(entry: Entry, ds: ImageDataset, dataset: str) -> str | None:
    """Why ``ds`` cannot feed metric ``entry`` (None if it can)."""
    needs = set(entry.spec.needs)
    if "mask" in needs and not ds.has_masks:
        return f"dataset {dataset!r} has no object masks"
    if "box" in needs and not ds.has_boxes:
        return f"dataset {dataset!r} has no bounding boxes"
    if "step_mask" in needs and not ds.has_step_masks:
        return f"dataset {dataset!r} has no per-step masks (a static dataset)"
    return None


def model_metric_skip_reason(name: str, params: object, card: ModelCard, suite: Suite) -> str | None:
    """Why model-scope metric ``name`` cannot score the model of ``card`` (None: it can).

    A metric that crafts on another model declares it (``MetricSpec.source_model``): a named
    model (a registered one or one of the suite's own; an unknown name is an error here, before
    any work), or "" for the probed model's twin (:func:`bench.attacks.resolve.twin_name`). A
    model with no twin -- a user's own SNN -- is skipped with this reason, as an ``ann_*`` method
    is (a shipped suite stays usable with ``--model``), rather than failing half-way through."""
    from bench.attacks.resolve import twin_name
    from bench.registry import MODELS

    source_model = METRICS.get(base_name(name)).spec.source_model
    if source_model is None:
        return None
    source = source_model(params)
    if source:
        if source not in suite.user_models:
            MODELS.get(source)
        return None
    if not twin_name(card):
        return (f"{name!r} crafts its attacks on the twin of {card.name!r}, which names none "
                f"(set metrics.{name}.source to the model to craft on, or drop the metric)")
    return None


def method_model_for(entry: Entry, card: ModelCard, params: object = None) -> tuple[str | None, str]:
    """The model ``entry`` (with ``params``) runs on when ``card``'s model is probed, or (None, reason)."""
    from bench.explain import check_compatible
    from bench.models import get_card

    kind = entry.spec.model_kind
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
    why = entry.spec.cannot_run(card, params) if entry.spec.cannot_run is not None else ""
    if why:
        return None, f"{entry.name!r} cannot run on {card.name!r}: {why}"
    return card.name, ""


def target_layer(params: object, card: ModelCard, built: dict[str, nn.Module]) -> str:
    """The layer a method with ``params`` targets on the model of ``card``, checked against
    the layers of that architecture ("" when the method targets none). ``built`` caches one
    untrained instance per card (only its layer names are read)."""
    from bench.explain import resolve_layer, uses_layer
    from bench.models import build_model

    if not uses_layer(params):
        return ""
    if card.name not in built:
        built[card.name] = build_model(card)  # leaves the global RNG untouched
    return resolve_layer(params, built[card.name], card, None)


def planned_metric(name: str, suite: Suite) -> PlannedMetric:
    entry = METRICS.get(base_name(name))  # a swept variant is scored by its base metric
    spec = entry.spec
    # a variant's limit: its own, else its base metric's
    return PlannedMetric(name=name, fn=entry.obj, params=suite.metrics[name],
                         limit=suite.limits.get(name, suite.limits.get(base_name(name))),
                         needs=frozenset(spec.needs),
                         per_timestep=bool(spec.per_timestep), attacked=bool(spec.attacked))


def check_fits(card: ModelCard, ds: ImageDataset, dataset: str) -> None:
    """A model can only be trained on / evaluated with data of its input shape and classes."""
    want = (card.num_classes, card.in_channels, card.input_size)
    have = (ds.num_classes, ds.channels, ds.image_size)
    if want != have:
        raise BenchError(f"model {card.name!r} takes {want[1]}x{want[2]}x{want[2]} images of {want[0]} "
                         f"classes; dataset {dataset!r} has {have[1]}x{have[2]}x{have[2]} images of "
                         f"{have[0]} classes")


def load_user_models(suite: Suite, ds: ImageDataset) -> dict[str, tuple[AdaptedSNN, CheckpointProvenance]]:
    """The suite's own models (``suite.user_models``), built, loaded and probed against the
    dataset (:func:`bench.adapters.load_user_model`): ``{name: (model, provenance)}``."""
    if not suite.user_models:
        return {}
    from bench.adapters import load_user_model

    return {name: load_user_model(name, spec, ds, suite.data.dataset) for name, spec in suite.user_models.items()}


def make_plan(suite: Suite, only: CellFilter = CellFilter()) -> Plan:
    """Resolve ``suite`` (:class:`bench.suite.Suite`) into a :class:`Plan`; writes nothing."""
    from bench.data import get_dataset
    from bench.explain import resolve_params
    from bench.models import get_card

    ds = get_dataset(suite.data.dataset, suite.data.split, suite.data.params)
    n = len(ds) if suite.run.n_samples == 0 else min(suite.run.n_samples, len(ds))
    if n == 0:
        raise BenchError(f"dataset {suite.data.dataset!r} split {suite.data.split!r} is empty")
    user = load_user_models(suite, ds)
    cards = {m: user[m][0].card if m in user else get_card(m) for m in suite.models}
    cells, skipped, built = [], [], {}  # built: an untrained model per card, for its layer names
    built.update({m: model for m, (model, _) in user.items()})  # an adapted model's own layers
    method_params = {k: resolve_params(METHODS.get(base_name(k)), p) for k, p in suite.methods.items()}
    for m in suite.models:
        for meth in suite.methods:
            mm, reason = method_model_for(METHODS.get(base_name(meth)), cards[m], method_params[meth])
            if mm is None:
                skipped.append({"model": m, "method": meth, "metric": "", "reason": reason})
                continue
            if mm not in cards:  # (not setdefault: a user model has no registered card to look up)
                cards[mm] = get_card(mm)
            cells.append(Cell(m, meth, mm, target_layer(method_params[meth], cards[mm], built)))
    for card in cards.values():
        check_fits(card, ds, suite.data.dataset)
    metric_skips = {k: r for k in suite.metrics
                    if (r := metric_skip_reason(METRICS.get(base_name(k)), ds, suite.data.dataset))}
    scored = [planned_metric(k, suite) for k in suite.metrics if k not in metric_skips]
    by_scope = {scope: [p for p in scored if METRICS.get(base_name(p.name)).spec.scope == scope]
                for scope in ("explanation", "model")}
    model_skips = [{"model": m, "method": "", "metric": p.name, "reason": r} for m in suite.models
                   for p in by_scope["model"] if (r := model_metric_skip_reason(p.name, p.params, cards[m], suite))]
    skipped_for = {m: {s["metric"] for s in model_skips if s["model"] == m} for m in suite.models}
    # a model-scope cell for each model with a metric left to score
    cells += [Cell(m, "", "") for m in suite.models if len(skipped_for[m]) < len(by_scope["model"])]
    if only:  # after every check: the filtered run fails exactly where the whole suite would
        cells = [c for c in cells if only.selects(c.model, c.method)]
        skipped = [s for s in skipped if only.selects(s["model"], s["method"])]
        model_skips = [s for s in model_skips if only.selects(s["model"], "")]
        if not cells:
            why = "; ".join(f"{s['model']}/{s['method']}: {s['reason']}" for s in skipped)
            raise BenchError(f"--only {only.record()} selects no cell of this suite" + (f" ({why})" if why else ""))
    versions = {
        # the specs' identity fields (bench.registry.record): part of the run hash
        "methods": {k: METHODS.get(base_name(k)).record() for k in suite.methods},
        "metrics": {k: METRICS.get(base_name(k)).record() for k in suite.metrics},
        "models": {k: to_plain(c) for k, c in sorted(cards.items())},
    }
    chash = suite.config_hash()
    return Plan(suite=suite, dataset=ds, positions=list(range(n)), cards=cards, cells=cells,
                skipped_cells=skipped, metric_skips=metric_skips, versions=versions,
                config_hash=chash, run_hash=config_hash({"config": chash, "versions": versions}),
                method_params=method_params, explanation_metrics=by_scope["explanation"],
                model_metrics=by_scope["model"], only=only, user_models=user,
                skipped_model_metrics=model_skips)
