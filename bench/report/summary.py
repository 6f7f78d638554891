"""The one-screen summary printed at the end of ``snnxai run`` (means only, no bootstrap)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench import stats
from bench.store.results import read_results

#: skipped methods / metrics listed by name in the summary (the rest are counted)
SHOWN = 6


def summary(run_dir: str | Path, top: int = 4) -> str:
    """Run id, samples, stage times, skips, and per model its accuracy and best methods."""
    d = Path(run_dir)
    run = json.loads((d / "run.json").read_text())
    res = read_results(d)
    higher = {k: bool(v["higher_is_better"]) for k, v in run["versions"]["metrics"].items()}
    sc = stats.scalar_rows(res[res["method"] != ""])
    means = sc.groupby(stats.CELL, as_index=False)["value"].mean().rename(columns={"value": "mean"})
    means["timestep"] = means["point"] = float("nan")
    agg = stats.aggregate_ranks(stats.rank_methods(means, higher))
    ds = run["dataset"]
    t = run.get("timing", {})
    lines = [f"run {run['run_id']}: {ds['n_samples']} samples of {ds['name']}/{ds['split']}, "
             f"{len(run['models'])} models x {len(run['versions']['methods'])} methods x "
             f"{len(run['versions']['metrics'])} metrics, {run['n_rows']} rows",
             "time: " + "  ".join(f"{k} {v:.1f}s" for k, v in t.get("stages_s", {}).items())
             + f"  | total {t.get('wall_s', float('nan')):.1f}s"]
    skipped = pd.DataFrame(run.get("skipped", []), columns=["model", "method", "metric", "reason"])
    if len(skipped):  # one line per skipped method or metric (with its first reason), at most SHOWN
        groups = list(skipped.fillna("").groupby(["method", "metric"], sort=False))
        lines.append(f"skipped: {len(skipped)} (model, method) cells or metrics (all in run.json):")
        for (method, metric), g in groups[:SHOWN]:
            models = ", ".join(m or "every model" for m in dict.fromkeys(g["model"]))
            lines.append(f"  {method or metric} on {models}: {g.iloc[0]['reason']}")
        if len(groups) > SHOWN:
            lines.append(f"  ... and {len(groups) - SHOWN} more")
    lines.append(f"{'model':<24} {'acc':>5}  best methods by mean rank over metrics")
    for model in run["models"]:
        acc = run.get("models_used", {}).get(model, {}).get("accuracy")
        best = agg[agg["model"] == model].head(top)
        ranks = ", ".join(f"{r.method} {r.mean_rank:.1f}" for r in best.itertuples())
        acc_s = "-" if acc is None else f"{acc:.3f}"
        lines.append(f"{model:<24} {acc_s:>5}  {ranks or '-'}")
    report = d / "report" / "report.html"
    lines.append(f"results: {d / 'results.csv'}" + (f"\nreport:  {report}" if report.is_file() else ""))
    return "\n".join(lines)
