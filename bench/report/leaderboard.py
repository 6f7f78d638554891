"""Leaderboards: per (dataset, model), methods x metrics, mean with 95% bootstrap CI.

Best mean per column in bold; a dagger where a method is significantly better than the
next-ranked method of that column (Wilcoxon signed-rank, Holm-corrected over the column);
arrows give each metric's direction. Rendered as Markdown, CSV (tidy) and LaTeX from one
intermediate :class:`Board`, so the three formats cannot disagree.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bench.report.data import ReportData

ARROW = {True: "↑", False: "↓"}
DAGGER = "†"


@dataclasses.dataclass
class Board:
    """One leaderboard: ``cells[(method, metric)]`` is a row of the summary (or missing)."""

    dataset: str
    model: str
    methods: list[str]
    metrics: list[str]
    higher: dict[str, bool]
    cells: dict[tuple[str, str], dict]
    mean_rank: dict[str, float]
    baselines: set[str]


def boards(rd: ReportData) -> list[Board]:
    """One :class:`Board` per (dataset, model) that has explanation rows."""
    out = []
    s = rd.summary[rd.summary["timestep"].isna() & rd.summary["point"].isna() & (rd.summary["method"] != "")]
    for dataset, model in rd.groups():
        g = s[(s["dataset"] == dataset) & (s["model"] == model)]
        methods = rd.method_order(dataset, model)
        metrics = rd.metric_order(g["metric"].unique())
        tests = rd.tests[(rd.tests["dataset"] == dataset) & (rd.tests["model"] == model)]
        better = {(r.method_a, r.metric): (bool(r.better), r.p_holm) for r in tests.itertuples()}
        ranks = rd.ranks[(rd.ranks["dataset"] == dataset) & (rd.ranks["model"] == model)]
        rank = {(r.method, r.metric): r.rank for r in ranks.itertuples()}
        cells = {}
        for r in g.itertuples():
            sig, p = better.get((r.method, r.metric), (False, np.nan))
            cells[(r.method, r.metric)] = {
                "n": int(r.n), "n_nan": int(r.n_nan), "mean": r.mean, "ci_lo": r.ci_lo,
                "ci_hi": r.ci_hi, "rank": rank.get((r.method, r.metric), np.nan),
                "best": rank.get((r.method, r.metric)) == _best_rank(rank, r.metric),
                "better_than_next": sig, "p_holm_next": p}
        mean_rank = ranks.groupby("method")["rank"].mean().to_dict()
        out.append(Board(dataset, model, methods, metrics, rd.higher, cells, mean_rank,
                         {m for m in methods if rd.is_baseline(m)}))
    return out


def _best_rank(rank: dict[tuple[str, str], float], metric: str) -> float:
    vals = [v for (m, k), v in rank.items() if k == metric and np.isfinite(v)]
    return min(vals) if vals else np.nan


def fmt_cell(c: dict | None, digits: int = 3) -> str:
    """``mean [lo, hi]`` (``-`` when the cell is absent, ``nan`` when every sample was NaN)."""
    if c is None:
        return "-"
    if not np.isfinite(c["mean"]):
        return "nan"
    return f"{c['mean']:.{digits}f} [{c['ci_lo']:.{digits}f}, {c['ci_hi']:.{digits}f}]"


def tidy(rd: ReportData) -> pd.DataFrame:
    """All boards as one long table (the CSV leaderboard)."""
    recs = [{"dataset": b.dataset, "model": b.model, "method": m, "metric": k,
             "higher_is_better": b.higher[k], "baseline": m in b.baselines, **b.cells[(m, k)]}
            for b in boards(rd) for m in b.methods for k in b.metrics if (m, k) in b.cells]
    return pd.DataFrame(recs)


# -- Markdown ---------------------------------------------------------------------------------
def decorate(c: dict | None, text: str, bold: str, dagger: str) -> str:
    """``text`` in the format's bold (``bold`` holds ``{}``) if best, plus the dagger if
    significantly better than the next method."""
    if c is not None and c["best"]:
        text = bold.format(text)
    if c is not None and c["better_than_next"]:
        text += dagger
    return text


def _md_cell(c: dict | None) -> str:
    return decorate(c, fmt_cell(c), "**{}**", f" {DAGGER}")


def board_markdown(b: Board) -> str:
    head = ["method", *(f"{k} {ARROW[b.higher[k]]}" for k in b.metrics), "mean rank"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + [":---:"] * (len(head) - 1)) + "|"]
    for m in b.methods:
        name = f"{m} *(baseline)*" if m in b.baselines else m
        rank = b.mean_rank.get(m, np.nan)
        lines.append("| " + " | ".join([name, *(_md_cell(b.cells.get((m, k))) for k in b.metrics),
                                        f"{rank:.2f}" if np.isfinite(rank) else "-"]) + " |")
    return "\n".join(lines)


def model_table(rd: ReportData) -> pd.DataFrame:
    """Per (dataset, model): accuracy on the run's samples and the model-scope metric means."""
    acc = {m: r.get("accuracy") for m, r in rd.run.get("models_used", {}).items()}
    s = rd.summary[(rd.summary["method"] == "") & rd.summary["timestep"].isna() & rd.summary["point"].isna()]
    rows = []
    for model in rd.run.get("models", []):
        row = {"model": model, "accuracy": acc.get(model)}
        for r in s[s["model"] == model].itertuples():
            row[f"{r.metric} {ARROW[rd.higher[r.metric]]}"] = fmt_cell(r._asdict())
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(rd: ReportData, command: str = "", extra: list[str] | None = None) -> str:
    """The whole leaderboard document; ``extra``: lines after the models table (the
    robustness audit, :func:`bench.report.robustness.markdown`)."""
    run = rd.run
    parts = [f"# Leaderboard: {run['suite']} ({run['run_id']})", "",
             f"{run['dataset']['n_samples']} samples of `{run['dataset']['name']}` "
             f"({run['dataset']['split']}); mean [95% bootstrap CI]. "
             f"**Bold**: best per column. {DAGGER}: significantly better than the next-ranked "
             f"method (Wilcoxon signed-rank, Holm, alpha {run['config'].get('report', {}).get('alpha', 0.05)}). "
             "↑/↓: higher/lower is better.", ""]
    if command:
        parts += [f"Produced by `{command}`.", ""]
    mt = model_table(rd)
    if len(mt):
        parts += ["## Models", "", frame_markdown(mt), ""]
    parts += extra or []
    for b in boards(rd):
        parts += [f"## {b.model} on {b.dataset}", "", board_markdown(b), ""]
    return "\n".join(parts)


def frame_markdown(df: pd.DataFrame) -> str:
    def fmt(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) and np.isfinite(v) else ("-" if v is None or v != v else str(v))

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "|".join("---" for _ in df.columns) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


# -- LaTeX ------------------------------------------------------------------------------------
def _tex(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def _tex_cell(c: dict | None) -> str:
    text = fmt_cell(c).replace("[", "{\\scriptsize[").replace("]", "]}") if c else "--"
    return decorate(c, text, r"\textbf{{{}}}", r"$^\dagger$")


def latex(rd: ReportData) -> str:
    """One booktabs table per (dataset, model)."""
    out = ["% generated by snnxai report; needs \\usepackage{booktabs}"]
    for b in boards(rd):
        arrows = {True: r"$\uparrow$", False: r"$\downarrow$"}
        out += [r"\begin{table}[t]", r"\centering", r"\scriptsize",
                rf"\caption{{{_tex(b.model)} on {_tex(b.dataset)}: mean [95\% CI]; bold best, "
                r"$^\dagger$ significantly better than the next method.}",
                r"\begin{tabular}{l" + "c" * len(b.metrics) + "}", r"\toprule",
                " & ".join(["method", *(f"{_tex(k)} {arrows[b.higher[k]]}" for k in b.metrics)]) + r" \\",
                r"\midrule"]
        for m in b.methods:
            name = rf"\textit{{{_tex(m)}}}" if m in b.baselines else _tex(m)
            out.append(" & ".join([name, *(_tex_cell(b.cells.get((m, k))) for k in b.metrics)]) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)
