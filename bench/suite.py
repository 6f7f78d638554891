"""Suites: the TOML file that defines one benchmark run, read into frozen dataclasses.

A suite has six tables::

    [run]          name, seed, model_seed, device, batch_size, n_samples, target, cache_dir, examples
    [data]         dataset, split, and [data.params] for the dataset factory
    models = [...] model names (the probed models)
    [methods.X]    one table per method name -> that method's params dataclass (methods
                   registered with ``baseline=True`` are added with defaults if missing)
    [metrics.Y]    one table per metric name -> that metric's params dataclass
    [postprocess]  the one post-processing config (part of the hash)
    [report]       statistics settings of the report (bootstrap size, CI level, test alpha)
    [limits]       metric -> N: that metric scores only the run's first N samples (for the
                   expensive ones, e.g. sanity checks that re-explain every sample per stage)

Names are checked against the registries when the suite is loaded, so a typo fails before
any file is written. Shipped suites live in ``bench/suites/<name>.toml``.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any, Literal

from bench.config import (apply_overrides, build_dataclass, config_hash, load_toml, to_plain)
from bench.errors import BenchError, ConfigError

SUITES_DIR = Path(__file__).parent / "suites"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How to run. ``n_samples``: the first n samples of the split (0 = all).
    ``target``: explain the ground-truth label or the probed model's prediction.
    ``cache_dir``: checkpoint/heatmap cache root ("" = the user cache; not hashed).
    ``examples``: how many samples' maps are saved per (model, method) for the gallery.
    ``seed``: the evaluation seed (sample encodings, random baselines, attack starts, bootstrap).
    ``model_seed``: the training seed of the models (the shipped zoo is seed 0); separate from
    ``seed`` so that re-running a suite under another seed evaluates the same trained models."""

    name: str = "suite"
    seed: int = 0
    model_seed: int = 0
    device: Literal["cpu", "cuda"] = "cpu"
    batch_size: int = 64
    n_samples: int = 256
    target: Literal["label", "pred"] = "label"
    cache_dir: str = ""
    examples: int = 4

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.n_samples < 0 or self.examples < 0:
            raise ValueError("n_samples and examples must be >= 0")
        if self.model_seed < 0:
            raise ValueError("model_seed must be >= 0")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The dataset: registry name, split and the factory's parameter table."""

    dataset: str = "shapes"
    split: str = "test"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Statistics of the report: bootstrap resamples, CI level, paired-test alpha (Holm)."""

    n_boot: int = 1000
    ci: float = 0.95
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.n_boot < 10:
            raise ValueError("n_boot must be >= 10")
        if not 0.5 <= self.ci < 1 or not 0 < self.alpha < 1:
            raise ValueError("ci must lie in [0.5, 1) and alpha in (0, 1)")


@dataclasses.dataclass(frozen=True)
class Suite:
    """A resolved suite. ``methods`` / ``metrics`` map a registry name to its params
    dataclass (None for an object without parameters), in file order."""

    run: RunConfig
    data: DataConfig
    models: tuple[str, ...]
    methods: dict[str, Any]
    metrics: dict[str, Any]
    postprocess: Any
    report: ReportConfig = ReportConfig()
    limits: dict[str, int] = dataclasses.field(default_factory=dict)

    def plain(self) -> dict[str, Any]:
        """JSON-compatible form (what run.json stores)."""
        return to_plain(self)

    def config_hash(self) -> str:
        """Hash of everything that can change a result; ``run.cache_dir`` (where caches
        live) and ``report`` (statistics only, recomputed from results) are left out."""
        plain = self.plain()
        plain["run"].pop("cache_dir")
        plain.pop("report")
        return config_hash(plain)


_TOP_KEYS = ("run", "data", "models", "methods", "metrics", "postprocess", "report", "limits")


def suite_names() -> list[str]:
    """Names of the shipped suites."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A shipped suite name or a path to a TOML file -> the file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise ConfigError(f"suite file not found: {p}")
        return p
    shipped = SUITES_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return shipped
    names = suite_names()
    close = difflib.get_close_matches(str(name_or_path), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise BenchError(f"unknown suite {str(name_or_path)!r}{hint} (shipped: {', '.join(names)}; "
                     "or pass a path to a .toml file)")


def _entry_params(registry: Any, table: Any, what: str) -> dict[str, Any]:
    """``{name: params table}`` -> ``{name: params dataclass}`` via each entry's ``make_params``."""
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"suite needs a non-empty [{what}] table")
    out = {}
    for name, params in table.items():
        if not isinstance(params, dict):
            raise ConfigError(f"{what}.{name}: expected a table of parameters, got {params!r}")
        out[name] = registry.get(name).make_params(params)
    return out


def build_suite(table: dict[str, Any]) -> Suite:
    """Build and validate a :class:`Suite` from a plain table (names checked in the registries)."""
    from bench.registry import DATASETS, METHODS, METRICS, MODELS
    from methods.postprocess import PostprocessConfig

    unknown = sorted(set(table) - set(_TOP_KEYS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], _TOP_KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"suite: unknown table {unknown[0]!r}{hint} (allowed: {', '.join(_TOP_KEYS)})")
    run = build_dataclass(RunConfig, table.get("run", {}), "run")
    data = build_dataclass(DataConfig, table.get("data", {}), "data")
    DATASETS.get(data.dataset)
    models = build_dataclass(_Models, {"models": table.get("models", [])}).models
    if not models:
        raise ConfigError("suite: 'models' must name at least one model")
    if len(set(models)) != len(models):
        raise ConfigError(f"suite: 'models' lists a model twice: {list(models)}")
    for m in models:
        MODELS.get(m)
    methods = _entry_params(METHODS, table.get("methods"), "methods")
    metrics = _entry_params(METRICS, table.get("metrics"), "metrics")
    limits = build_dataclass(_Limits, {"limits": table.get("limits", {})}).limits
    for k, n in limits.items():
        if k not in metrics:
            close = difflib.get_close_matches(k, list(metrics), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"limits.{k}: not a metric of this suite{hint}")
        if n < 1:
            raise ConfigError(f"limits.{k}: must be >= 1, got {n}")
    # trivial baselines are always on the leaderboard: add any the suite does not list
    methods.update({e.name: e.make_params() for e in METHODS.entries(baseline=True) if e.name not in methods})
    return Suite(
        run=run,
        data=data,
        models=models,
        methods=methods,
        metrics=metrics,
        postprocess=build_dataclass(PostprocessConfig, table.get("postprocess", {}), "postprocess"),
        report=build_dataclass(ReportConfig, table.get("report", {}), "report"),
        limits=limits,
    )


@dataclasses.dataclass(frozen=True)
class _Models:
    models: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Limits:
    limits: dict[str, int] = dataclasses.field(default_factory=dict)


def load_suite(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Suite:
    """Read a shipped suite (by name) or a TOML file, apply ``--set`` overrides, validate."""
    path = resolve_suite_path(name_or_path)
    table = apply_overrides(load_toml(path), list(overrides))
    table.setdefault("run", {}).setdefault("name", path.stem)
    return build_suite(table)
