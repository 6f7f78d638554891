"""Report figures (matplotlib Agg + seaborn theme, PNG), one consistent style.

Each ``fig_*`` function takes the :class:`~bench.report.data.ReportData` and returns a
``Figure`` (or None when the run holds nothing to draw). Figures put the models side by side
(one row of panels per model), so SNNs and their ANN twin are compared at a glance and a run
renders a dozen figures, not a dozen per model. Colours are fixed per method (and per model);
baselines are dashed. CI bands and bars are the bootstrap CIs of
:func:`bench.stats.summarize`, never recomputed by seaborn.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.report.data import ReportData  # noqa: E402

STYLE = {"style": "whitegrid", "context": "paper", "font_scale": 1.0}
DPI = 90


def setup_style() -> None:
    sns.set_theme(**STYLE)
    plt.rcParams.update({"figure.dpi": DPI, "axes.titlesize": 9, "axes.labelsize": 8,
                         "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7})


def palette(rd: ReportData) -> dict[str, tuple]:
    """A fixed colour per method (suite order) and per model."""
    methods = rd.run.get("order", {}).get("methods") or list(rd.method_meta)
    colors = sns.color_palette("tab20", max(len(methods), 1))
    pal = {m: colors[i % len(colors)] for i, m in enumerate(methods)}
    mcol = sns.color_palette("dark", max(len(rd.run.get("models", [])), 1))
    pal.update({m: mcol[i % len(mcol)] for i, m in enumerate(rd.run.get("models", []))})
    return pal


def _arrow(rd: ReportData, metric: str) -> str:
    hib = rd.higher.get(metric)
    return "" if hib is None else "↑" if hib else "↓"


def _title(rd: ReportData, metric: str) -> str:
    """The metric's name with its direction arrow (as in the leaderboard)."""
    return f"{metric} {_arrow(rd, metric)}"


def _xscale(rd: ReportData, metric: str) -> tuple[float, str]:
    """Robustness curves are over epsilon in pixel units: plot them in 1/255 steps. Temporal
    curves (``tracking_lag``: the path distance at each lag) are over the lag in steps."""
    cat = rd.metric_meta.get(metric, {}).get("category")
    if cat == "robustness":
        return 255.0, "epsilon (x 1/255)"
    return 1.0, {"faithfulness": "fraction of pixels", "sanity": "randomization stage",
                 "temporal": "lag (steps)"}.get(cat, "point")


def _line_kw(rd: ReportData, method: str, pal: dict) -> dict:
    return {"color": pal.get(method), "linestyle": "--" if rd.is_baseline(method) else "-", "lw": 1.3}


def _band(ax: plt.Axes, g: pd.DataFrame, x: str, scale: float = 1.0, **kw: object) -> None:
    """Mean line of ``g`` over column ``x`` with its CI band, in the line's colour."""
    g = g.sort_values(x)
    (line,) = ax.plot(g[x] * scale, g["mean"], **kw)
    ax.fill_between(g[x] * scale, g["ci_lo"], g["ci_hi"], color=line.get_color(), alpha=0.15, lw=0)


def _legend(axes: np.ndarray) -> None:
    """One legend (every label once) beside the top-right panel, outside the data."""
    handles, labels = [], []
    for a in axes.ravel():
        for h, lab in zip(*a.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        axes[0, -1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)


def finish(fig: Figure, title: str, left: float = 0.75, right: float = 0.2, bottom: float = 0.55,
           wspace: float = 0.35, hspace: float = 0.6) -> Figure:
    """Suptitle and fixed margins in inches (left/right/bottom; wspace/hspace as fractions of a
    panel). Fixed margins instead of tight_layout: a report draws a few dozen panels per figure,
    and the layout solvers cost more than the drawing on a CPU runner."""
    w, h = fig.get_size_inches()
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / h, va="top")
    fig.subplots_adjust(left=min(left / w, 0.45), right=1 - min(right / w, 0.45),
                        bottom=min(bottom / h, 0.4), top=1 - min(0.6 / h, 0.3),
                        wspace=wspace, hspace=hspace)
    return fig


def panels(rows: list[str], cols: list[str], size: tuple[float, float],
           draw: Callable[[plt.Axes, str, str], None], row_label: Callable[[str], str] = str
           ) -> tuple[Figure, np.ndarray]:
    """A grid with one row per model and one column per metric; ``draw(ax, row, col)``."""
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(size[0] * len(cols) + 2.6, size[1] * len(rows) + 1.2),
                             squeeze=False)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            draw(axes[i, j], r, c)
        axes[i, 0].set_ylabel(row_label(r))
    return fig, axes


def _sel(df: pd.DataFrame, **eq: object) -> pd.DataFrame:
    for k, v in eq.items():
        df = df[df[k] == v]
    return df


def _models(rd: ReportData, df: pd.DataFrame) -> list[str]:
    return [m for m in rd.run.get("models", []) if m in set(df["model"])]


# -- figures ----------------------------------------------------------------------------------
def fig_points(rd: ReportData, dataset: str) -> Figure | None:
    """Per-metric point plots: mean and 95% CI of every method, one colour per model."""
    s = _sel(rd.summary, dataset=dataset)
    s = s[s["timestep"].isna() & s["point"].isna() & (s["method"] != "")]
    metrics = rd.metric_order(s["metric"].unique())
    if not metrics:
        return None
    methods, models, pal = rd.method_order_all(dataset), _models(rd, s), palette(rd)
    ncols = min(4, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.4 * ncols + 3.1, (0.2 * len(methods) + 0.7) * nrows + 1.2),
                             squeeze=False)
    y = np.arange(len(methods))
    dodge = np.linspace(-0.3, 0.3, len(models)) if len(models) > 1 else np.zeros(1)
    for n, ax in enumerate(axes.ravel()):
        if n >= len(metrics):
            ax.set_visible(False)
            continue
        for model, dy in zip(models, dodge):
            g = _sel(s, metric=metrics[n], model=model).set_index("method").reindex(methods)
            ax.hlines(y + dy, g["ci_lo"], g["ci_hi"], colors=[pal[model]], lw=1)
            ax.scatter(g["mean"], y + dy, color=pal[model], s=9, zorder=3, label=model)
        ax.set_yticks(y, methods if n % ncols == 0 else [])  # names once per row of panels
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.set_title(_title(rd, metrics[n]))
    _legend(axes)
    return finish(fig, f"{dataset}: mean and 95% bootstrap CI per metric (colour: model)",
                  left=1.55, right=1.5, wspace=0.15, hspace=0.45)


def fig_curves(rd: ReportData, dataset: str, category: str) -> Figure | None:
    """Curve metrics of one category (deletion/insertion, stability vs epsilon, randomization
    stages): per model and metric, the mean curve of every method with its CI band."""
    s = _sel(rd.summary, dataset=dataset)
    s = s[s["point"].notna() & s["timestep"].isna() & (s["method"] != "")]
    metrics = [k for k in rd.metric_order(s["metric"].unique())
               if rd.metric_meta.get(k, {}).get("category") == category]
    if not metrics:
        return None
    pal = palette(rd)

    def draw(ax: plt.Axes, model: str, k: str) -> None:
        scale, xlabel = _xscale(rd, k)
        for m in rd.method_order(dataset, model):
            g = _sel(s, metric=k, method=m, model=model)
            if len(g):
                _band(ax, g, "point", scale, label=m, marker="." if len(g) < 6 else None,
                      **_line_kw(rd, m, pal))
        ax.set_title(_title(rd, k))
        ax.set_xlabel(xlabel)

    fig, axes = panels(_models(rd, s), metrics, (3.2, 2.4), draw)
    _legend(axes)
    return finish(fig, f"{dataset}: {category} curves (mean, 95% CI); one row per model", right=1.9)


def fig_timesteps(rd: ReportData, dataset: str) -> Figure | None:
    """Per-time-step scores of the temporal methods; dotted: the time-aggregated map's mean."""
    s = _sel(rd.summary, dataset=dataset)
    steps = s[s["timestep"].notna() & s["point"].isna()]
    # per-step stability under attack has its own figure (fig_stability_steps)
    metrics = [k for k in rd.metric_order(steps["metric"].unique())
               if rd.metric_meta.get(k, {}).get("category") != "robustness"]
    if not metrics:
        return None
    steps = steps[steps["metric"].isin(metrics)]
    pal = palette(rd)

    def draw(ax: plt.Axes, model: str, k: str) -> None:
        g_all = _sel(steps, metric=k, model=model)
        for m in sorted(g_all["method"].unique()):
            _band(ax, _sel(g_all, method=m), "timestep", marker="o", ms=3, label=m, **_line_kw(rd, m, pal))
            agg = _sel(s, metric=k, model=model, method=m)
            agg = agg[agg["timestep"].isna() & agg["point"].isna()]
            if len(agg):
                ax.axhline(float(agg["mean"].iloc[0]), color=pal.get(m), ls=":", lw=1)
        ax.set_title(_title(rd, k))
        ax.set_xlabel("time step t")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))

    fig, axes = panels(_models(rd, steps), metrics, (2.8, 2.2), draw)
    _legend(axes)
    return finish(fig, f"{dataset}: scores per time step (dotted: time-aggregated map); one row per model",
                  right=1.5)


def fig_ranks(rd: ReportData, dataset: str) -> Figure | None:
    """Rank of each method on each metric (1 = best), one panel per model."""
    r = _sel(rd.ranks, dataset=dataset)
    models = _models(rd, r)
    if not models:
        return None
    methods = rd.method_order_all(dataset)
    metrics = rd.metric_order(r["metric"].unique())
    ncols = min(3, len(models))
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.3 * len(metrics) * ncols + 1.8,
                                                    (0.22 * len(methods) + 1.5) * nrows + 0.7), squeeze=False)
    for j, ax in enumerate(axes.ravel()):
        if j >= len(models):
            ax.set_visible(False)
            continue
        w = _sel(r, model=models[j]).pivot_table(index="method", columns="metric", values="rank")
        w = w.reindex(index=methods, columns=metrics)
        sns.heatmap(w, annot=True, fmt=".0f", cmap="viridis_r", cbar=False, ax=ax,
                    annot_kws={"size": 6}, yticklabels=j % ncols == 0)
        ax.set_title(models[j])
        ax.set_xlabel("")
        ax.set_ylabel("")
    return finish(fig, f"{dataset}: method ranks per metric (1 = best)", left=1.55, bottom=1.45,
                  wspace=0.05, hspace=0.9)


def fig_agreement(rd: ReportData, dataset: str) -> Figure | None:
    """Kendall tau between the metrics' method rankings (direction-adjusted), mean over models."""
    a = _sel(rd.agreement, dataset=dataset)
    if a["metric_a"].nunique() < 2:
        return None
    order = rd.metric_order(a["metric_a"].unique())
    w = a.pivot_table(index="metric_a", columns="metric_b", values="tau", aggfunc="mean")
    w = w.reindex(index=order, columns=order)
    fig, ax = plt.subplots(figsize=(0.42 * len(order) + 2.8, 0.36 * len(order) + 2.2))
    sns.heatmap(w, annot=True, fmt=".1f", cmap="vlag", vmin=-1, vmax=1, ax=ax,
                cbar_kws={"label": "Kendall tau"}, annot_kws={"size": 6})
    ax.set_xlabel("")
    ax.set_ylabel("")
    n = a["model"].nunique()
    return finish(fig, f"{dataset}: agreement of the metrics' method rankings (mean over {n} models)",
                  left=1.55, right=0.1, bottom=1.45)


#: a matplotlib colour: a name ("tab:red") or an RGB tuple (a seaborn palette entry)
Color = str | tuple[float, ...]


def curve_style(rd: ReportData, metric: str, others: Iterator[Color]) -> tuple[str, Color, str]:
    """Legend label, colour and line style of a model-scope curve: the metric spec's
    ``plot_style`` (its ``param_label`` when the run sets every parameter it names), else the
    metric's name, the next colour of ``others`` and a solid line."""
    style = rd.plot_style(metric)
    if style is None:
        return metric, next(others), "-"
    label = style.label
    if style.param_label:
        params = rd.metric_params(metric)
        names = [f for _, f, _, _ in string.Formatter().parse(style.param_label) if f]
        if all(params.get(n) for n in names):
            label = style.param_label.format(**params)
    return label, style.color, style.linestyle


def fig_model_curves(rd: ReportData, dataset: str, flags: frozenset = frozenset()) -> Figure | None:
    """Accuracy under attack and the audit's success rates vs eps: one panel per model, one
    line per model-scope curve metric (mean, 95% CI band; accuracy at eps 0 = clean).
    ``flags``: ``(model, metric, point)`` where the audit found that attack significantly
    stronger than the white-box one, marked with a red cross."""
    s = _sel(rd.summary, dataset=dataset, method="")
    s = s[s["point"].notna() & s["timestep"].isna()]
    metrics = rd.metric_order(s["metric"].unique())
    if not metrics:
        return None
    models = _models(rd, s)
    others = iter(sns.color_palette("tab10"))
    style = {k: curve_style(rd, k, others) for k in metrics}
    scale, xlabel = _xscale(rd, metrics[0])
    ncols = min(5, len(models))
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.9 * ncols + 2.9, 2.4 * nrows + 1.0), squeeze=False)
    for n, ax in enumerate(axes.ravel()):
        if n >= len(models):
            ax.set_visible(False)
            continue
        model = models[n]
        for k in metrics:
            label, color, ls = style[k]
            g = _sel(s, metric=k, model=model)
            if len(g):
                _band(ax, g, "point", scale, label=f"{label} {_arrow(rd, k)}", color=color,
                      linestyle=ls, marker="o", ms=3, lw=1.3)
            for p in sorted(pt for (m, kk, pt) in flags if m == model and kk == k):
                y = g.loc[np.isclose(g["point"].to_numpy(float), p), "mean"]
                ax.scatter([p * scale] * len(y), y, marker="X", s=45, color="red", zorder=4,
                           label="audit: stronger than white-box")
        ax.set_title(model)
        ax.set_xlabel(xlabel)
        if s["mean"].dropna().between(0, 1).all():  # rates: the full [0, 1] range, so panels compare
            ax.set_ylim(-0.03, 1.03)
        if n % ncols == 0:
            ax.set_ylabel("rate")
    _legend(axes)
    return finish(fig, f"{dataset}: accuracy under attack and attack success rates vs epsilon (mean, 95% CI)",
                  right=2.6, wspace=0.3)


def fig_stability_steps(rd: ReportData, dataset: str) -> Figure | None:
    """Stability of per-time-step maps under attack: x = time step, y = similarity of the clean
    and attacked step-t maps, one line per eps (mean, 95% CI); dotted: the time-aggregated
    map at the same eps. One row per model, one column per (metric, temporal method); the
    methods of one metric share the y axis. The metrics: those whose spec asks for this
    figure (``step_figure``), else every per-step robustness metric of the run."""
    s = _sel(rd.summary, dataset=dataset)
    s = s[(s["method"] != "") & s["point"].notna()]
    robust = [k for k in s["metric"].unique() if rd.metric_meta.get(k, {}).get("category") == "robustness"]
    steps = s[s["timestep"].notna() & s["metric"].isin(robust)]
    present = rd.metric_order(steps["metric"].unique())
    wanted = set(rd.step_figure_metrics())
    metrics = [k for k in present if k in wanted] or present
    if not metrics:
        return None
    steps = steps[steps["metric"].isin(metrics)]
    methods = [m for m in rd.method_order_all(dataset) if m in set(steps["method"])]
    cols = [(k, m) for k in metrics for m in methods]
    eps = np.sort(steps["point"].unique())
    colors = dict(zip(eps, sns.color_palette("viridis", len(eps))))

    def draw(ax: plt.Axes, model: str, col: tuple[str, str]) -> None:
        k, method = col
        g = _sel(s, model=model, method=method, metric=k)
        for e in eps:
            ge = g[np.isclose(g["point"].to_numpy(float), e)]
            st = ge[ge["timestep"].notna()]
            if len(st):
                _band(ax, st, "timestep", color=colors[e], marker="o", ms=2.5, lw=1.2, label=f"eps {e * 255:.3g}/255")
            agg = ge[ge["timestep"].isna()]
            if len(st) and len(agg):
                ax.axhline(float(agg["mean"].iloc[0]), color=colors[e], ls=":", lw=1)
        ax.set_title(f"{method}: {_title(rd, k)}")
        ax.set_xlabel("time step t")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))

    fig, axes = panels(_models(rd, steps), cols, (2.6, 2.0), draw)
    for row in axes:  # one y range per (model, metric), so the methods compare at a glance
        for k in metrics:
            group = [ax for ax, c in zip(row, cols) if c[0] == k and ax.has_data()]
            if group:
                lo = min(ax.get_ylim()[0] for ax in group)
                hi = max(ax.get_ylim()[1] for ax in group)
                for ax in group:
                    ax.set_ylim(lo, hi)
    _legend(axes)
    return finish(fig, f"{dataset}: stability of per-time-step maps under attack (dotted: time-aggregated map); "
                       "one row per model", right=1.4)
