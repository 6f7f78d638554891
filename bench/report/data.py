"""Everything a report shows, computed once from a run directory.

A report is a pure function of ``results.csv`` + ``run.json`` (+ the saved example maps):
metric directions and categories, method flags and the statistics settings all come from
run.json, never from the registries, so an old run reports the same way forever.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import stats
from bench.errors import BenchError
from bench.results import read_results

#: column order of the leaderboard, by metric category
CATEGORY_ORDER = ("localization", "faithfulness", "sanity", "robustness", "complexity")
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

    @property
    def metric_meta(self) -> dict[str, dict]:
        return self.run["versions"]["metrics"]

    @property
    def method_meta(self) -> dict[str, dict]:
        return self.run["versions"]["methods"]

    @property
    def higher(self) -> dict[str, bool]:
        return {k: bool(v["higher_is_better"]) for k, v in self.metric_meta.items()}

    def metric_order(self, names: list[str] | set[str]) -> list[str]:
        """Metrics sorted by category (CATEGORY_ORDER), then in suite order."""
        suite = self.run.get("order", {}).get("metrics") or list(self.metric_meta)

        def key(k: str) -> tuple[int, int]:
            cat = self.metric_meta.get(k, {}).get("category", "")
            return (CATEGORY_ORDER.index(cat) if cat in CATEGORY_ORDER else len(CATEGORY_ORDER),
                    suite.index(k) if k in suite else len(suite))

        return sorted(set(names), key=key)

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


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def load_report_data(run_dir: str | Path) -> ReportData:
    """Read a run directory (results.csv[.gz] + run.json) and compute the statistics."""
    d = Path(run_dir)
    if not (d / "run.json").is_file():
        raise BenchError(f"{d} is not a finished run directory (no run.json)")
    run = json.loads((d / "run.json").read_text())
    results = read_results(d)
    cfg = run["config"].get("report", {})
    n_boot, ci, alpha = cfg.get("n_boot", 1000), cfg.get("ci", 0.95), cfg.get("alpha", 0.05)
    higher = {k: bool(v["higher_is_better"]) for k, v in run["versions"]["metrics"].items()}
    summary = stats.summarize(results, n_boot=n_boot, ci=ci, seed=int(run.get("seed", 0)))
    expl = summary[summary["method"] != ""]
    scalars = stats.scalar_rows(results[results["method"] != ""])
    return ReportData(run_dir=d, results=results, run=run, summary=summary,
                      tests=stats.adjacent_tests(scalars, expl, higher, alpha),
                      ranks=stats.rank_methods(expl, higher),
                      agreement=stats.metric_agreement(expl, higher))
