"""Everything a report shows, computed once from a run directory.

A report is a pure function of ``results.csv`` + ``run.json`` (+ the saved example maps):
metric directions and categories, method flags and the statistics settings all come from
run.json, never from the registries, so an old run reports the same way forever.

Which part a method or metric plays in the report (the attack audit, plot styles, paired
comparisons, the galleries) comes from the report roles of its spec
(:class:`bench.registry.MethodSpec`, :class:`bench.registry.MetricSpec`) as run.json records
them, never from name lists here. Runs recorded before run.json held roles get the roles of
the registered object of the same name (roles are presentation only: no number depends on them).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import stats
from bench.errors import BenchError
from bench.registry import AUDIT_ROLES, METHODS, METRIC_CATEGORIES, METRICS, PlotStyle, Registry
from bench.store.results import read_results
from bench.variants import base_name

#: stem of the attacked example inputs in ``examples/<method_model>/`` (not a method cell)
ATTACKED = "attacked"


@dataclasses.dataclass
class ReportData:
    """results: the long table. run: run.json. summary: mean/CI per cell, timestep and point.
    tests: each method vs the next-ranked one (Holm). ranks / agreement: see :mod:`bench.stats`."""

    run_dir: Path
    results: pd.DataFrame
    run: dict[str, Any]
    summary: pd.DataFrame
    tests: pd.DataFrame
    ranks: pd.DataFrame
    agreement: pd.DataFrame

    @functools.cached_property
    def metric_meta(self) -> dict[str, dict]:
        """Per metric: its recorded spec (identity fields and report roles)."""
        return _with_roles(self.run, "metrics", METRICS)

    @functools.cached_property
    def method_meta(self) -> dict[str, dict]:
        """Per method: its recorded spec (identity fields and report roles)."""
        return _with_roles(self.run, "methods", METHODS)

    @property
    def higher(self) -> dict[str, bool]:
        return {k: bool(v["higher_is_better"]) for k, v in self.metric_meta.items()}

    def suite_order(self, kind: str) -> list[str]:
        """The suite's ``kind`` ("methods" or "metrics") in suite order."""
        meta = self.method_meta if kind == "methods" else self.metric_meta
        return list(self.run.get("order", {}).get(kind) or meta)

    def categories(self) -> list[str]:
        """Metric categories in report order: the documented ones
        (:data:`bench.registry.METRIC_CATEGORIES`), then any other in suite order."""
        cats = [self.metric_meta.get(k, {}).get("category", "") for k in self.suite_order("metrics")]
        return [*METRIC_CATEGORIES, *dict.fromkeys(c for c in cats if c not in METRIC_CATEGORIES)]

    def metric_order(self, names: list[str] | set[str]) -> list[str]:
        """Metrics sorted by category (:meth:`categories`), then in suite order."""
        suite = self.suite_order("metrics")
        cats = self.categories()

        def key(k: str) -> tuple[int, int]:
            cat = self.metric_meta.get(k, {}).get("category", "")
            return (cats.index(cat) if cat in cats else len(cats),
                    suite.index(k) if k in suite else len(suite))

        return sorted(set(names), key=key)

    # -- report roles (see the module doc) ------------------------------------------------
    def audit_metrics(self) -> dict[str, str]:
        """``{audit role: metric}`` of the run's metrics (the first in suite order per role)."""
        out: dict[str, str] = {}
        for k in self.suite_order("metrics"):
            role = self.metric_meta.get(k, {}).get("audit_role")
            if role in AUDIT_ROLES:
                out.setdefault(role, k)
        return out

    def plot_style(self, metric: str) -> PlotStyle | None:
        """The metric's model-scope curve style, or None."""
        style = self.metric_meta.get(metric, {}).get("plot_style")
        return PlotStyle(**style) if style else None

    def headline_metrics(self) -> tuple[str, ...]:
        """The run's headline metrics (the discriminative-power section), in suite order."""
        return tuple(k for k in self.suite_order("metrics") if self.metric_meta.get(k, {}).get("headline"))

    def over_time_metrics(self, part: str) -> tuple[str, ...]:
        """The run's metrics with report role ``over_time == part``, in suite order."""
        return tuple(k for k in self.suite_order("metrics") if self.metric_meta.get(k, {}).get("over_time") == part)

    def step_figure_metrics(self) -> list[str]:
        """Metrics the per-time-step stability figure shows (when present)."""
        return [k for k in self.suite_order("metrics") if self.metric_meta.get(k, {}).get("step_figure")]

    def pairs(self) -> list[tuple[str, str]]:
        """Paired comparisons ``(method a, method b)``: each method with every method its spec
        compares it with, in suite order; a compared method the suite swept stands for each of
        its variants (:mod:`bench.variants`)."""
        methods = self.suite_order("methods")
        return [(a, b) for a in methods for c in self.method_meta.get(a, {}).get("compare_with", ())
                for b in ([c] if c in methods else [m for m in methods if base_name(m) == c] or [c])]

    def attack_gallery_methods(self) -> list[str]:
        """Methods the clean-vs-attacked gallery shows (when present), in suite order."""
        return [m for m in self.suite_order("methods") if self.method_meta.get(m, {}).get("attack_gallery")]

    def is_baseline(self, method: str) -> bool:
        return bool(self.method_meta.get(method, {}).get("baseline", False))

    def method_order(self, dataset: str, model: str) -> list[str]:
        """Methods of a (dataset, model) best mean rank first; baselines after the others."""
        agg = stats.aggregate_ranks(self.ranks[(self.ranks["dataset"] == dataset) & (self.ranks["model"] == model)])
        ranked = agg["method"].tolist()
        present = self.results[(self.results["dataset"] == dataset) & (self.results["model"] == model)
                               & (self.results["method"] != "")]["method"].unique().tolist()
        ordered = ranked + sorted(set(present) - set(ranked))
        return [m for m in ordered if not self.is_baseline(m)] + [m for m in ordered if self.is_baseline(m)]

    def method_order_all(self, dataset: str) -> list[str]:
        """Methods of a dataset by mean rank over all its models and metrics; baselines last."""
        r = self.ranks[self.ranks["dataset"] == dataset]
        ranked = r.groupby("method")["rank"].mean().sort_values(kind="stable").index.tolist()
        present = self.results[(self.results["dataset"] == dataset) & (self.results["method"] != "")]
        ordered = ranked + sorted(set(present["method"]) - set(ranked))
        return [m for m in ordered if not self.is_baseline(m)] + [m for m in ordered if self.is_baseline(m)]

    def groups(self) -> list[tuple[str, str]]:
        """(dataset, model) pairs with explanation rows, in the suite's model order."""
        ex = self.results[self.results["method"] != ""]
        models = self.run.get("models", [])
        pairs = ex[["dataset", "model"]].drop_duplicates().itertuples(index=False)
        return sorted(((d, m) for d, m in pairs),
                      key=lambda p: (p[0], models.index(p[1]) if p[1] in models else len(models), p[1]))

    def examples(self) -> dict[str, Any]:
        """``{"inputs": arrays, (model, method): arrays}`` of the saved example maps.

        A method cell may hold ``adv_points [E]`` and ``adv_maps [E, n, H, W]`` (its
        time-aggregated maps of the attacked inputs); the attacked inputs themselves are in
        :meth:`attacked`, not here."""
        root = self.run_dir / "examples"
        out: dict[Any, Any] = {}
        if (root / "inputs.npz").is_file():
            out["inputs"] = _npz(root / "inputs.npz")
        for p in sorted(root.glob("*/*.npz")):
            if p.stem != ATTACKED:
                out[(p.parent.name, p.stem)] = _npz(p)
        return out

    def attacked(self) -> dict[str, dict[str, np.ndarray]]:
        """``{method_model: arrays}`` of ``examples/<method_model>/attacked.npz``: ``points [E]``
        (eps, pixel units), ``image [E, n, C, H, W]`` (crafted white-box on that model, pixel
        units) and ``pred [E, n]`` (that model's prediction on it); samples as in inputs.npz."""
        root = self.run_dir / "examples"
        return {p.parent.name: _npz(p) for p in sorted(root.glob(f"*/{ATTACKED}.npz"))}

    def method_model(self, model: str, method: str) -> str:
        """The model ``method`` ran on when probing ``model`` (e.g. the ANN twin for
        ``ann_gradcam``); ``model`` itself when the results do not say."""
        r = self.results
        mm = r.loc[(r["model"] == model) & (r["method"] == method), "method_model"].unique()
        mm = [m for m in mm if m]
        return str(mm[0]) if mm else model

    def metric_params(self, metric: str) -> dict[str, Any]:
        """The suite's parameters of ``metric`` from run.json (empty when it did not run)."""
        return dict(self.run.get("config", {}).get("metrics", {}).get(metric) or {})


def _with_roles(run: dict[str, Any], kind: str, registry: Registry) -> dict[str, dict]:
    """run.json's identity record of each method or metric (``versions``) with its report
    roles: those run.json records (``roles``); a role field the run records for no entry at all
    (a run recorded before that field existed, or before run.json held roles) comes from the
    registered object of the same name (none when the name is not registered)."""
    recorded = run.get("roles", {}).get(kind)
    fields = {k for r in (recorded or {}).values() for k in r}  # the role fields the run knew
    out = {}
    for name, meta in run["versions"][kind].items():
        base = base_name(name)  # a swept variant has its base entry's roles
        known = registry.get(base).record("role") if base in registry else {}
        later = {k: v for k, v in known.items() if k not in fields}
        out[name] = {**meta, **later, **(recorded or {}).get(name, {})}
    return out


def _npz(path: Path) -> dict[str, np.ndarray]:
    """An example file's arrays; a damaged one, or one holding pickled objects (never loaded:
    ``allow_pickle`` stays off), is a one-line BenchError naming it."""
    from bench.store.rundir import _readable_npz

    return _readable_npz(path)


def load_report_data(run_dir: str | Path, log: Callable[[str], None] = lambda line: None) -> ReportData:
    """Read a run directory (results.csv[.gz] + run.json) and compute the statistics (``log``:
    told once both files are read, before the statistics, the slow part)."""
    d = Path(run_dir)
    if not (d / "run.json").is_file():
        raise BenchError(f"{d} is not a finished run directory (no run.json)")
    from bench.store.rundir import read_json

    run = read_json(d / "run.json")  # unparsable: a one-line BenchError naming the file
    try:
        cfg = run["config"].get("report", {})
        higher = {k: bool(v["higher_is_better"]) for k, v in run["versions"]["metrics"].items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise BenchError(f"{d / 'run.json'} is damaged or not a run's record (no {exc}); rerun the "
                         "run, or `snnxai merge` its shards, to rewrite it") from None
    results = read_results(d)
    log(f"report: {d}: {len(results)} rows; statistics and leaderboards")
    n_boot, ci, alpha = cfg.get("n_boot", 1000), cfg.get("ci", 0.95), cfg.get("alpha", 0.05)
    summary = stats.summarize(results, n_boot=n_boot, ci=ci, seed=int(run.get("seed", 0)))
    expl = summary[summary["method"] != ""]
    scalars = stats.scalar_rows(results[results["method"] != ""])
    return ReportData(run_dir=d, results=results, run=run, summary=summary,
                      tests=stats.adjacent_tests(scalars, expl, higher, alpha),
                      ranks=stats.rank_methods(expl, higher),
                      agreement=stats.metric_agreement(expl, higher))
