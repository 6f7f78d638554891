"""The report's view of explanations over time (runs with per-step metrics, ``shapes_motion``).

The leaderboard shows each metric's time-aggregated row (the aggregated map against the union
of the step masks: a static prior that sits where the object *passes* scores there). What the
per-step metrics measure is in their rows with a ``timestep``; this module summarizes them per
(model, method): the mean over the T steps of each sample's per-step scores (a 95% bootstrap CI
over samples), the first and the last step's mean (where a method gains or loses the object),
and the tracking table: the share of samples whose maps have a lag at all (a static map has
none), the mean lag in steps and the mean residual distance in px, with CIs. Which metrics are
which comes from the report role ``over_time`` of their specs (:meth:`ReportData.over_time_metrics`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.stats import bootstrap_ci

NOTE = ("Per-step metrics summarized over the T steps: each sample's mean over its steps, then the "
        "mean over samples with a 95% bootstrap CI; 'first' / 'last': the mean at the first / last step. "
        "Tracking: 'with lag' is the share of samples whose maps have a lag (a map that ignores time "
        "has none); lag in steps (> 0: the map follows the object late), residual in px at that lag.")


def _ci_text(values: np.ndarray, key: str, n_boot: int, seed: int) -> tuple[float, str]:
    x = np.asarray(values, dtype=float)
    if not np.isfinite(x).any():
        return float("nan"), "-"
    m, lo, hi = bootstrap_ci(x, n_boot=n_boot, seed=seed, key=key)
    return m, f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def step_table(results: pd.DataFrame, metrics: tuple[str, ...], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (dataset, model, method, step metric of ``metrics``): ``n`` samples, ``mean``
    over steps and samples, ``ci`` text, ``first`` / ``last`` step means. Empty when no per-step
    rows exist."""
    r = results[results["metric"].isin(metrics) & results["timestep"].notna() & results["point"].isna()]
    rows = []
    for (d, model, method, metric), g in r.groupby(["dataset", "model", "method", "metric"], sort=False):
        per_sample = g.groupby("sample_id")["value"].mean()  # NaN steps ignored (pandas mean)
        by_step = g.groupby("timestep")["value"].mean()
        mean, text = _ci_text(per_sample.to_numpy(), f"steps|{d}|{model}|{method}|{metric}", n_boot, seed)
        rows.append({"dataset": d, "model": model, "method": method, "metric": metric,
                     "n": int(per_sample.notna().sum()), "mean": mean, "ci": text,
                     "first": float(by_step.iloc[0]), "last": float(by_step.iloc[-1])})
    return pd.DataFrame(rows, columns=["dataset", "model", "method", "metric", "n", "mean", "ci", "first", "last"])


def tracking_table(results: pd.DataFrame, lag_metrics: tuple[str, ...], residual_metrics: tuple[str, ...],
                   n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (dataset, model, method) with tracking metrics (the first of ``lag_metrics``
    and of ``residual_metrics``): samples, share with a lag, lag and residual (mean and CI text)."""
    lag_name, res_name = (lag_metrics or ("",))[0], (residual_metrics or ("",))[0]
    r = results[results["metric"].isin([lag_name, res_name]) & results["timestep"].isna() & results["point"].isna()]
    rows = []
    for (d, model, method), g in r.groupby(["dataset", "model", "method"], sort=False):
        row: dict[str, object] = {"dataset": d, "model": model, "method": method}
        lag = g[g["metric"] == lag_name].groupby("sample_id")["value"].mean()
        res = g[g["metric"] == res_name].groupby("sample_id")["value"].mean()
        row["n"] = int(max(len(lag), len(res)))
        row["with_lag"] = float(lag.notna().mean()) if len(lag) else float("nan")
        row["lag"] = _ci_text(lag.to_numpy(), f"lag|{d}|{model}|{method}", n_boot, seed)[1]
        row["residual_px"] = _ci_text(res.to_numpy(), f"res|{d}|{model}|{method}", n_boot, seed)[1]
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "model", "method", "n", "with_lag", "lag", "residual_px"])


def display(steps: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """``steps`` as one row per (model, method) and a column per metric of ``metrics`` (in that
    order): "mean [CI] (first -> last)"."""
    if not len(steps):
        return steps
    cell = steps.assign(text=[f"{c} ({f:.2f} -> {lst:.2f})" for c, f, lst in
                              zip(steps["ci"], steps["first"], steps["last"])])
    wide = cell.pivot_table(index=["model", "method"], columns="metric", values="text", aggfunc="first", sort=False)
    cols = [m for m in metrics if m in wide.columns]
    return wide[cols].reset_index()


def markdown(steps: pd.DataFrame, tracking: pd.DataFrame, metrics: tuple[str, ...]) -> list[str]:
    """The leaderboard document's lines on time (none without per-step rows); ``metrics``: the
    step metrics' column order."""
    from bench.report.leaderboard import frame_markdown

    if not len(steps) and not len(tracking):
        return []
    out = ["## Over time", "", NOTE, ""]
    if len(steps):
        out += [frame_markdown(display(steps, metrics)), ""]
    if len(tracking):
        out += [frame_markdown(tracking.drop(columns="dataset")), ""]
    return out
