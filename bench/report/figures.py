"""Report figures (matplotlib Agg + seaborn theme, PNG), one consistent style.

Each ``fig_*`` function takes the :class:`~bench.report.data.ReportData` and returns a
``Figure`` (or None when the run holds nothing to draw). Colours are fixed per method across
all figures; baselines are drawn dashed and gray-ish. CI bands and bars are the bootstrap CIs
of :func:`bench.stats.summarize`, never recomputed by seaborn.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.ticker  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.report.data import ReportData  # noqa: E402

STYLE = {"style": "whitegrid", "context": "paper", "font_scale": 1.0}
DPI = 100


def setup_style() -> None:
    sns.set_theme(**STYLE)
    plt.rcParams.update({"figure.dpi": DPI, "axes.titlesize": 9,
                         "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
                         "ytick.labelsize": 7})


def palette(rd: ReportData) -> dict[str, tuple]:
    """A fixed colour per method (suite order) and per model."""
    methods = rd.run.get("order", {}).get("methods") or list(rd.method_meta)
    colors = sns.color_palette("tab20", max(len(methods), 1))
    pal = {m: colors[i % len(colors)] for i, m in enumerate(methods)}
    mcol = sns.color_palette("dark", max(len(rd.run.get("models", [])), 1))
    pal.update({m: mcol[i % len(mcol)] for i, m in enumerate(rd.run.get("models", []))})
    return pal


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (3.2, 2.5)) -> tuple[Figure, np.ndarray]:
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _xscale(rd: ReportData, metric: str) -> tuple[float, str]:
    """Robustness curves are over epsilon in pixel units: plot them in 1/255 steps."""
    cat = rd.metric_meta.get(metric, {}).get("category")
    if cat == "robustness":
        return 255.0, "epsilon (x 1/255)"
    return 1.0, {"faithfulness": "fraction of pixels", "sanity": "randomization stage"}.get(cat, "point")


def _legend(fig: Figure, axes: np.ndarray, n: int) -> None:
    """One legend beside the last panel (outside the data)."""
    ax = axes[n - 1]
    handles, labels = [], []
    for a in axes[:n]:
        for h, lab in zip(*a.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)


def _band(ax: plt.Axes, g: pd.DataFrame, x: str, scale: float = 1.0, **kw: object) -> None:
    """Mean line of ``g`` over column ``x`` with its CI band, in the line's colour."""
    g = g.sort_values(x)
    (line,) = ax.plot(g[x] * scale, g["mean"], **kw)
    ax.fill_between(g[x] * scale, g["ci_lo"], g["ci_hi"], color=line.get_color(), alpha=0.15, lw=0)


def finish(fig: Figure, title: str) -> Figure:
    """Suptitle and tight layout leaving room for it (constrained layout is ~2x slower)."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97 if fig.get_figheight() > 4 else 0.92))
    return fig


def _sel(df: pd.DataFrame, **eq: object) -> pd.DataFrame:
    for k, v in eq.items():
        df = df[df[k] == v]
    return df


def _line_kw(rd: ReportData, method: str, pal: dict) -> dict:
    return {"color": pal.get(method), "linestyle": "--" if rd.is_baseline(method) else "-", "lw": 1.3}


def _title(rd: ReportData, metric: str) -> str:
    """The metric's name with its direction arrow (as in the leaderboard)."""
    hib = rd.higher.get(metric)
    return f"{metric} {'' if hib is None else '↑' if hib else '↓'}"


def fig_points(rd: ReportData, dataset: str, model: str) -> Figure | None:
    """Per-metric point plots: mean and 95% CI of every method."""
    s = _sel(rd.summary, dataset=dataset, model=model)
    s = s[s["timestep"].isna() & s["point"].isna() & (s["method"] != "")]
    metrics = rd.metric_order(s["metric"].unique())
    if not metrics:
        return None
    methods = rd.method_order(dataset, model)
    pal = palette(rd)
    fig, axes = _grid(len(metrics), 4, (2.6, 0.22 * len(methods) + 0.9))
    y = np.arange(len(methods))
    colors = [pal.get(m) for m in methods]
    ncols = min(4, len(metrics))
    for i, (ax, k) in enumerate(zip(axes, metrics)):
        g = s[s["metric"] == k].set_index("method").reindex(methods)
        ax.hlines(y, g["ci_lo"], g["ci_hi"], colors=colors, lw=1.2)   # one artist per panel
        ax.scatter(g["mean"], y, c=colors, s=14, zorder=3)
        ax.set_yticks(y, methods if i % ncols == 0 else [])   # names once per row of panels
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.set_title(_title(rd, k))
    return finish(fig, f"{model} on {dataset}: mean and 95% bootstrap CI")


def fig_curves(rd: ReportData, dataset: str, model: str, category: str) -> Figure | None:
    """Curve metrics of one category (deletion/insertion, robustness vs epsilon, sanity
    randomization stages): mean curve per method with a CI band."""
    s = _sel(rd.summary, dataset=dataset, model=model)
    s = s[s["point"].notna() & s["timestep"].isna() & (s["method"] != "")]
    metrics = [k for k in rd.metric_order(s["metric"].unique())
               if rd.metric_meta.get(k, {}).get("category") == category]
    if not metrics:
        return None
    pal = palette(rd)
    fig, axes = _grid(len(metrics), 3, (3.6, 2.7))
    for ax, k in zip(axes, metrics):
        scale, xlabel = _xscale(rd, k)
        for m in rd.method_order(dataset, model):
            g = s[(s["metric"] == k) & (s["method"] == m)]
            if len(g):
                _band(ax, g, "point", scale, label=m, marker="." if len(g) < 6 else None,
                      **_line_kw(rd, m, pal))
        ax.set_title(_title(rd, k))
        ax.set_xlabel(xlabel)
    _legend(fig, axes, len(metrics))
    return finish(fig, f"{model} on {dataset}: {category} curves (mean, 95% CI)")


def fig_timesteps(rd: ReportData, dataset: str, model: str) -> Figure | None:
    """Per-time-step scores of temporal methods; dotted: the time-aggregated map's mean."""
    s = _sel(rd.summary, dataset=dataset, model=model)
    steps = s[s["timestep"].notna() & s["point"].isna()]
    metrics = rd.metric_order(steps["metric"].unique())
    if not metrics:
        return None
    pal = palette(rd)
    fig, axes = _grid(len(metrics), 3, (3.4, 2.6))
    for ax, k in zip(axes, metrics):
        for m in sorted(steps[steps["metric"] == k]["method"].unique()):
            g = steps[(steps["metric"] == k) & (steps["method"] == m)]
            _band(ax, g, "timestep", marker="o", ms=3, label=m, **_line_kw(rd, m, pal))
            agg = s[(s["metric"] == k) & (s["method"] == m) & s["timestep"].isna() & s["point"].isna()]
            if len(agg):
                ax.axhline(float(agg["mean"].iloc[0]), color=pal.get(m), ls=":", lw=1)
        ax.set_title(_title(rd, k))
        ax.set_xlabel("time step t")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    _legend(fig, axes, len(metrics))
    return finish(fig, f"{model} on {dataset}: localization per time step (dotted: time-aggregated map)")


def fig_ranks(rd: ReportData, dataset: str, model: str) -> Figure | None:
    """Rank of each method on each metric (1 = best), methods by mean rank."""
    r = _sel(rd.ranks, dataset=dataset, model=model)
    if not len(r):
        return None
    w = r.pivot_table(index="method", columns="metric", values="rank")
    w = w.reindex(index=[m for m in rd.method_order(dataset, model) if m in w.index],
                  columns=rd.metric_order(w.columns))
    fig, ax = plt.subplots(figsize=(0.55 * w.shape[1] + 2.5, 0.3 * w.shape[0] + 1.2))
    sns.heatmap(w, annot=True, fmt=".0f", cmap="viridis_r", cbar_kws={"label": "rank"}, ax=ax,
                annot_kws={"size": 7})
    ax.set_title(f"{model} on {dataset}: method ranks per metric")
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def fig_agreement(rd: ReportData, dataset: str, model: str) -> Figure | None:
    """Kendall tau between the metrics' method rankings (direction-adjusted)."""
    a = _sel(rd.agreement, dataset=dataset, model=model)
    if a["metric_a"].nunique() < 2:
        return None
    order = rd.metric_order(a["metric_a"].unique())
    w = a.pivot_table(index="metric_a", columns="metric_b", values="tau").reindex(index=order, columns=order)
    fig, ax = plt.subplots(figsize=(0.5 * len(order) + 2.6, 0.45 * len(order) + 1.4))
    sns.heatmap(w, annot=True, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, ax=ax,
                cbar_kws={"label": "Kendall tau"}, annot_kws={"size": 6})
    ax.set_title(f"{model} on {dataset}: metric agreement")
    ax.set_xlabel("")
    ax.set_ylabel("")
    fig.tight_layout()
    return fig


def fig_model_curves(rd: ReportData, dataset: str) -> Figure | None:
    """Model-scope curve metrics (e.g. accuracy under attack vs epsilon), one line per model."""
    s = _sel(rd.summary, dataset=dataset, method="")
    s = s[s["point"].notna() & s["timestep"].isna()]
    metrics = rd.metric_order(s["metric"].unique())
    if not metrics:
        return None
    pal = palette(rd)
    fig, axes = _grid(len(metrics), 3, (3.6, 2.7))
    for ax, k in zip(axes, metrics):
        scale, xlabel = _xscale(rd, k)
        for m in rd.run.get("models", []):
            g = s[(s["metric"] == k) & (s["model"] == m)]
            if len(g):
                _band(ax, g, "point", scale, marker="o", ms=3, label=m, color=pal.get(m))
        ax.set_title(_title(rd, k))
        ax.set_xlabel(xlabel)
    _legend(fig, axes, len(metrics))
    return finish(fig, f"models on {dataset}")
