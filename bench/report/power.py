"""The benchmark's discriminative power: how many method pairs a run can tell apart.

A leaderboard ranks only where its scores separate methods. For each (dataset, model, metric)
every unordered pair of methods scored on the same samples is tested (two-sided Wilcoxon
signed-rank, Holm-corrected over the pairs of that column, :func:`bench.stats.paired_tests`);
a pair is *separated* when its Holm p-value is below ``alpha``. With 12 methods on an SNN that is
66 pairs per column. The table also gives each column's largest 95% CI half-width (the
bootstrap CI of the mean, over the column's methods), the precision the sample size buys.

Pure functions of the report data; ``power.csv`` and the report's "Discriminative power"
section are written from :func:`power_table` on the run's headline metrics (report role
``headline`` of the metric specs; every scalar metric would cost a Wilcoxon test per pair and
column: about 30 s on a 32-sample default run).
"""

from __future__ import annotations

import pandas as pd

from bench.stats import paired_tests, scalar_rows

COLUMNS = ["dataset", "model", "metric", "n_methods", "n_pairs", "separated", "share", "n_samples",
           "max_ci_half_width"]


def power_table(results: pd.DataFrame, summary: pd.DataFrame, alpha: float = 0.05,
                metrics: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Separated method pairs per (dataset, model, metric).

    ``results``: the long results table (``results.csv``); ``summary``: its per-cell summary
    with ``mean, ci_lo, ci_hi`` (:func:`bench.stats.summarize`). ``metrics``: restrict to these
    (default: every scalar metric of the run). Columns: :data:`COLUMNS`.
    """
    scalars = scalar_rows(results)
    if metrics is not None:
        scalars = scalars[scalars["metric"].isin(metrics)]
    if scalars.empty:
        return pd.DataFrame(columns=COLUMNS)
    tests = paired_tests(scalars)
    # the CIs of the same time-aggregated scalar rows the tests compare (no per-step or curve points)
    half_widths = (scalar_rows(summary).assign(half=lambda f: (f["ci_hi"] - f["ci_lo"]) / 2)
                   .groupby(["dataset", "model", "metric"])["half"].max())
    recs = []
    for (d, m, k), g in tests.groupby(["dataset", "model", "metric"], sort=True):
        half = half_widths.get((d, m, k), float("nan"))
        n_methods = len(set(g["method_a"]) | set(g["method_b"]))
        separated = int((g["p_holm"] < alpha).sum())
        recs.append({"dataset": d, "model": m, "metric": k, "n_methods": n_methods, "n_pairs": len(g),
                     "separated": separated, "share": separated / len(g) if len(g) else float("nan"),
                     "n_samples": int(g["n_pairs"].max()) if len(g) else 0,
                     "max_ci_half_width": float(half)})
    return pd.DataFrame(recs, columns=COLUMNS)


def headline(table: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """One row per (dataset, model): ``separated/n_pairs`` on each headline metric, for display."""
    sub = table[table["metric"].isin(metrics)]
    if sub.empty:
        return pd.DataFrame()
    recs = []
    for (d, m), g in sub.groupby(["dataset", "model"], sort=True):
        row = {"dataset": d, "model": m}
        for r in g.itertuples(index=False):
            row[f"{r.metric}: separated pairs"] = f"{r.separated}/{r.n_pairs}"
            row[f"{r.metric}: max CI half-width"] = f"{r.max_ci_half_width:.3f}"
        recs.append(row)
    return pd.DataFrame(recs)


NOTE = ("Method pairs separated: two-sided Wilcoxon signed-rank test on the samples both methods "
        "scored, Holm-corrected over the pairs of each (model, metric) column, p < alpha. "
        "Max CI half-width: the widest 95% bootstrap CI of a method's mean in that column.")
