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

from bench.config import apply_overrides, build_dataclass, config_hash, load_toml, to_plain
from bench.errors import BenchError, ConfigError
from bench.variants import base_name, expand

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
        if not self.name.strip() or self.name.startswith("-") or "/" in self.name:
            # it starts the run id and the default run folder's name
            raise ValueError(f"name must be a non-empty name without '/' that does not start with '-', "
                             f"got {self.name!r}")


#: dataset params that size the test split only (every generated dataset draws each split from
#: its own per-index streams, so the train split's samples do not depend on them)
EVAL_ONLY_PARAMS = frozenset({"n_test"})


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The dataset: registry name, split and the factory's parameter table."""

    dataset: str = "shapes"
    split: str = "test"
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: the data the probed models were trained on, when it differs from the evaluated data
    #: (e.g. the zoo's `shapes` models probed on `shapes_pair` or on another texture level);
    #: "" = the evaluated dataset and its params (the models are trained on what they explain)
    train_dataset: str = ""
    train_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.train_params and not self.train_dataset:
            raise ValueError("data.train_params needs data.train_dataset")

    def training_data(self) -> tuple[str, dict[str, Any] | None]:
        """(dataset, params) the models are loaded (or trained) for. The params that size only
        an evaluation split (:data:`EVAL_ONLY_PARAMS`) are left out: they do not change the
        train split, so they must not change which weights are used (the zoo's sidecar records
        the defaults)."""
        name, params = (self.train_dataset, self.train_params) if self.train_dataset else (self.dataset, self.params)
        kept = {k: v for k, v in params.items() if k not in EVAL_ONLY_PARAMS}
        return name, kept or None


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
    #: the suite's declared version (top-level ``version = "1"``; None: undeclared). A frozen
    #: suite (the leaderboard) bumps it when its content changes; ``snnxai compare`` checks it.
    version: str | None = None
    #: the swept values of each method / metric variant (``{"sam@layer=conv1": {"layer":
    #: "conv1"}}``, :mod:`bench.variants`); empty without a ``sweep`` table
    variants: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    #: the user's own models (``[models.NAME]`` tables with a ``source``, or ``snnxai run
    #: --model``), by name; each is also listed in ``models`` (:mod:`bench.adapters`)
    user_models: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: weights files of registered models (``snnxai run --checkpoint PATH``: this project's state
    #: dict or the SAM reference code's format, :mod:`bench.models.reference_ckpt`), by name
    checkpoints: dict[str, str] = dataclasses.field(default_factory=dict)

    def plain(self) -> dict[str, Any]:
        """JSON-compatible form (what run.json stores). An undeclared ``version`` is left out,
        so suites without one keep the config (and hash) they had before versions existed."""
        plain = to_plain(self)
        if plain.get("version") is None:
            plain.pop("version", None)
        if not plain.get("variants"):  # likewise a suite without a sweep
            plain.pop("variants", None)
        if not plain.get("user_models"):  # likewise a suite of registered models only
            plain.pop("user_models", None)
        if not plain.get("checkpoints"):  # likewise a suite whose models load from the zoo / cache
            plain.pop("checkpoints", None)
        if not plain["data"].get("train_dataset") and not plain["data"].get("train_params"):
            plain["data"].pop("train_dataset", None)  # likewise models trained on the evaluated data
            plain["data"].pop("train_params", None)
        return plain

    def config_hash(self) -> str:
        """Hash of everything that can change a result; ``run.cache_dir`` (where caches
        live) and ``report`` (statistics only, recomputed from results) are left out."""
        plain = self.plain()
        plain["run"].pop("cache_dir")
        plain.pop("report")
        plain.pop("variants", None)  # labels only: the variants' params are in methods/metrics
        return config_hash(plain)


_TOP_KEYS = ("run", "data", "models", "methods", "metrics", "postprocess", "report", "limits", "version")


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


def _entry_params(registry: Any, table: Any, what: str,
                  variants: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``{name: params table}`` -> ``{name: params dataclass}`` via each entry's ``make_params``;
    a table with a ``sweep`` sub-table gives one entry per variant (:func:`bench.variants.expand`),
    whose swept values are added to ``variants``."""
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"suite needs a non-empty [{what}] table")
    out = {}
    for name, params in table.items():
        if not isinstance(params, dict):
            raise ConfigError(f"{what}.{name}: expected a table of parameters, got {params!r}")
        for key, (p, swept) in expand(registry.get(name), params, f"{what}.{name}").items():
            out[key] = p
            if swept and variants is not None:
                variants[key] = swept
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
    version = table.get("version")
    if version is not None and not (isinstance(version, str) and version.strip()):
        raise ConfigError(f"suite: 'version' must be a non-empty string such as \"1\", got {version!r}")
    run = build_dataclass(RunConfig, table.get("run", {}), "run")
    data = build_dataclass(DataConfig, table.get("data", {}), "data")
    DATASETS.get(data.dataset)
    models, user_models = _models(table.get("models", []))
    if not models:
        raise ConfigError("suite: 'models' must name at least one model")
    if len(set(models)) != len(models):
        raise ConfigError(f"suite: 'models' lists a model twice: {list(models)}")
    for m in models:
        if m not in user_models:
            MODELS.get(m)
    variants: dict[str, dict[str, Any]] = {}
    methods = _entry_params(METHODS, table.get("methods"), "methods", variants)
    metrics = _entry_params(METRICS, table.get("metrics"), "metrics", variants)
    limits = build_dataclass(_Limits, {"limits": table.get("limits", {})}).limits
    for k, n in limits.items():
        if k not in metrics and k not in {base_name(m) for m in metrics}:  # a swept metric's base name
            close = difflib.get_close_matches(k, list(metrics), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"limits.{k}: not a metric of this suite{hint}")
        if n < 1:
            raise ConfigError(f"limits.{k}: must be >= 1, got {n}")
    # trivial baselines are always on the leaderboard: add any the suite does not list
    listed = {base_name(m) for m in methods}  # a swept baseline is listed by its variants
    methods.update({e.name: e.make_params() for e in METHODS.entries(baseline=True) if e.name not in listed})
    return Suite(
        run=run,
        data=data,
        models=models,
        methods=methods,
        metrics=metrics,
        postprocess=build_dataclass(PostprocessConfig, table.get("postprocess", {}), "postprocess"),
        report=build_dataclass(ReportConfig, table.get("report", {}), "report"),
        limits=limits,
        version=version,
        variants=variants,
        user_models=user_models,
    )


def _models(value: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """``models``: a list of registered names, or a table of tables: ``[models.NAME]`` empty
    for a registered model, or with a ``source`` for a user's own model (its
    :class:`bench.adapters.UserModelSpec`). Returns (names in order, user specs by name)."""
    if not isinstance(value, dict):
        return build_dataclass(_Models, {"models": value}).models, {}
    from bench.adapters.spec import UserModelSpec

    user = {}
    for name, spec in value.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"models.{name}: expected a table (empty for a registered model), got {spec!r}")
        if spec:
            user[name] = build_dataclass(UserModelSpec, spec, f"models.{name}")
    return tuple(value), user


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
    for key in ("run", "data", "postprocess", "report", "limits"):
        if not isinstance(table.get(key, {}), dict):
            raise ConfigError(f"suite: {key!r} must be a table, got {table[key]!r}")
    table.setdefault("run", {}).setdefault("name", path.stem)
    return build_suite(table)
