"""Statistics of a results table: bootstrap CIs, paired tests, rank aggregation, agreement.

Pure functions of DataFrames in the results schema (see :mod:`bench.store.results`). Every random
draw is keyed by ``(seed, cell key)`` through :func:`bench.seeding.derive_seed`, so a cell's CI
never depends on which other cells the table holds.

Direction: ``higher`` maps a metric name to its ``higher_is_better`` flag; ranks and
"better" always respect it (rank 1 = best).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.seeding import derive_seed

#: one leaderboard cell = one (dataset, model, method, metric)
CELL = ["dataset", "model", "method", "metric"]


def bootstrap_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap distribution of the NaN-ignoring column means of ``x`` ``[n, P]`` -> ``[n_boot, P]``.

    Rows (samples) are resampled together, so the P columns (curve points) share draws.
    Implemented as resample counts ``[n_boot, n]`` times the data: O(n_boot * n * P) flops and
    no ``[n_boot, n, P]`` intermediate.
    """
    n = x.shape[0]
    idx = rng.integers(0, n, size=(n_boot, n))
    counts = np.bincount((idx + n * np.arange(n_boot)[:, None]).ravel(),
                         minlength=n * n_boot).reshape(n_boot, n).astype(float)
    ok = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ np.where(ok, x, 0.0)) / (counts @ ok.astype(float))


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, ci: float = 0.95, seed: int = 0,
                 key: str = "") -> tuple[float, float, float]:
    """``(mean, lo, hi)``: NaN-ignoring mean of ``values`` ``[n]`` with a percentile bootstrap CI."""
    x = np.asarray(values, dtype=float).reshape(-1, 1)
    mean, lo, hi = _ci(x, n_boot, ci, np.random.default_rng(derive_seed(seed, 0, f"bootstrap|{key}")))
    return float(mean[0]), float(lo[0]), float(hi[0])


def _ci(x: np.ndarray, n_boot: int, ci: float, rng: np.random.Generator):
    """Column means of ``x`` ``[n, P]`` and their percentile CI bounds (each ``[P]``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, on purpose
        mean = np.nanmean(x, axis=0) if x.size else np.full(x.shape[1], np.nan)
        if x.shape[0] == 0:
            return mean, mean.copy(), mean.copy()
        boots = bootstrap_means(x, n_boot, rng)
        q = 100 * (1 - ci) / 2
        pct = np.percentile if np.isfinite(boots).all() else np.nanpercentile  # nan-aware is slow
        lo, hi = pct(boots, [q, 100 - q], axis=0)
    return mean, lo, hi


SUMMARY_COLUMNS = [*CELL, "timestep", "point", "n", "n_nan", "mean", "ci_lo", "ci_hi"]


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values and each entry's index into them (NaN sorts last, as one value)."""
    uniq, inv = np.unique(values, return_inverse=True, equal_nan=True)
    return uniq, inv.reshape(-1)


def summarize(df: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap CI per (dataset, model, method, metric, timestep, point).

    Input: rows in the results schema (timestep/point NaN where empty). Output columns:
    :data:`SUMMARY_COLUMNS`. All (timestep, point) columns of one cell are bootstrapped with
    the same sample draws. Works on integer codes (one pass over the table, no per-cell
    pivots), since a full run has ~1000 cells.
    """
    if not len(df):
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    cell_id = df.groupby(CELL, sort=True).ngroup().to_numpy()
    cell_keys = df[CELL].drop_duplicates().sort_values(CELL).to_numpy()
    # (timestep, point) pairs as one column code; NaN (empty) becomes -inf so it sorts first
    tp = np.stack([df["timestep"].to_numpy(float), df["point"].to_numpy(float)], 1)
    tp = np.where(np.isnan(tp), -np.inf, tp)
    tp_uniq, tp_code = np.unique(tp, axis=0, return_inverse=True)
    _, s_code = _codes(df["sample_id"].to_numpy())
    value = df["value"].to_numpy(float)
    order = np.argsort(cell_id, kind="stable")
    bounds = np.flatnonzero(np.diff(cell_id[order])) + 1
    out: dict[str, list[np.ndarray]] = {k: [] for k in SUMMARY_COLUMNS}
    for c, rows in enumerate(np.split(order, bounds)):
        cols, ci_idx = np.unique(tp_code.reshape(-1)[rows], return_inverse=True)
        samples, si_idx = np.unique(s_code[rows], return_inverse=True)
        x = np.full((len(samples), len(cols)), np.nan)
        x[si_idx, ci_idx] = value[rows]
        key = cell_keys[c]
        rng = np.random.default_rng(derive_seed(seed, 0, "bootstrap|" + "|".join(map(str, key))))
        mean, lo, hi = _ci(x, n_boot, ci, rng)
        n = np.isfinite(x).sum(axis=0)
        t, p = tp_uniq[cols, 0], tp_uniq[cols, 1]
        part = {**{k: np.full(len(cols), v, dtype=object) for k, v in zip(CELL, key)},
                "timestep": np.where(np.isneginf(t), np.nan, t), "point": np.where(np.isneginf(p), np.nan, p),
                "n": n, "n_nan": x.shape[0] - n, "mean": mean, "ci_lo": lo, "ci_hi": hi}
        for k, v in part.items():
            out[k].append(v)
    frame = pd.DataFrame({k: np.concatenate(v) for k, v in out.items()})
    return frame.astype({k: str for k in CELL})


def scalar_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of time-aggregated scalar scores (timestep and point empty)."""
    return df[df["timestep"].isna() & df["point"].isna()]


# -- paired tests ---------------------------------------------------------------------------
def holm(pvals: np.ndarray | list[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1; NaN kept as NaN)."""
    p = np.asarray(pvals, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples (NaN pairs dropped).

    All-zero differences (identical scores) give p = 1; fewer than one usable pair gives NaN.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    if d.size == 0:
        return float("nan")
    if not np.any(d != 0):
        return 1.0
    # exact null distribution for small samples without ties or zeros, else the normal
    # approximation with tie correction (scipy's "auto" would run a slow permutation test)
    nz = d[d != 0]
    exact = nz.size <= 50 and nz.size == d.size and np.unique(np.abs(nz)).size == nz.size
    return float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided",
                              method="exact" if exact else "approx").pvalue)


def paired_tests(scalars: pd.DataFrame, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Wilcoxon tests between methods on the same samples, Holm-corrected per family.

    ``scalars``: scalar rows (one value per dataset, model, method, metric, sample_id).
    ``pairs``: rows ``dataset, model, metric, method_a, method_b`` to test; default all pairs.
    A family is one (dataset, model, metric). Output adds ``n_pairs, diff_mean, p, p_holm``
    (``diff_mean`` = mean of a - b over the paired samples).
    """
    if pairs is None:
        pairs = all_pairs(scalars)
    wide = {k: g.pivot_table(index="sample_id", columns="method", values="value", aggfunc="first")
            for k, g in scalars.groupby(["dataset", "model", "metric"], sort=False)}
    recs = []
    for r in pairs.itertuples(index=False):
        w = wide.get((r.dataset, r.model, r.metric))
        if w is None or r.method_a not in w or r.method_b not in w:
            a = b = np.array([])
        else:
            a, b = w[r.method_a].to_numpy(float), w[r.method_b].to_numpy(float)
        ok = np.isfinite(a) & np.isfinite(b)
        recs.append({**r._asdict(), "n_pairs": int(ok.sum()),
                     "diff_mean": float(np.mean(a[ok] - b[ok])) if ok.any() else np.nan,
                     "p": wilcoxon_p(a, b)})
    out = pd.DataFrame(recs, columns=[*pairs.columns, "n_pairs", "diff_mean", "p"])
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["dataset", "model", "metric"], sort=False).groups.items():
        out.loc[idx, "p_holm"] = holm(out.loc[idx, "p"].to_numpy())
    return out


def all_pairs(scalars: pd.DataFrame) -> pd.DataFrame:
    """Every unordered pair of methods per (dataset, model, metric)."""
    recs = [{"dataset": d, "model": m, "metric": k, "method_a": a, "method_b": b}
            for (d, m, k), g in scalars.groupby(["dataset", "model", "metric"], sort=True)
            for a, b in itertools.combinations(sorted(g["method"].unique()), 2)]
    return pd.DataFrame(recs, columns=["dataset", "model", "metric", "method_a", "method_b"])


def adjacent_tests(scalars: pd.DataFrame, summary: pd.DataFrame, higher: dict[str, bool],
                   alpha: float = 0.05) -> pd.DataFrame:
    """Is each method significantly better than the next-ranked one (per dataset, model, metric)?

    Methods are ordered best-first by mean; each is tested against its successor (Wilcoxon,
    Holm over the adjacent comparisons of that column). ``better`` = p_holm < alpha.
    """
    ranked = rank_methods(summary, higher).sort_values(["dataset", "model", "metric", "rank", "method"])
    recs = []
    for (d, m, k), g in ranked.groupby(["dataset", "model", "metric"], sort=True):
        meths = g["method"].tolist()
        recs += [{"dataset": d, "model": m, "metric": k, "method_a": a, "method_b": b}
                 for a, b in zip(meths, meths[1:])]
    pairs = pd.DataFrame(recs, columns=["dataset", "model", "metric", "method_a", "method_b"])
    out = paired_tests(scalars, pairs)
    out["better"] = out["p_holm"] < alpha
    return out


# -- ranks and agreement --------------------------------------------------------------------
def _scalar_summary(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary[summary["timestep"].isna() & summary["point"].isna()]
    return s[np.isfinite(s["mean"].to_numpy(float))]


def rank_methods(summary: pd.DataFrame, higher: dict[str, bool]) -> pd.DataFrame:
    """Rank methods per (dataset, model, metric) by mean, best = 1, ties share the average rank.

    Output: ``dataset, model, metric, method, mean, rank``.
    """
    s = _scalar_summary(summary)[["dataset", "model", "metric", "method", "mean"]].copy()
    sign = s["metric"].map(lambda k: 1.0 if higher[k] else -1.0)
    s["score"] = s["mean"] * sign
    s["rank"] = s.groupby(["dataset", "model", "metric"])["score"].rank(ascending=False, method="average")
    return s.drop(columns="score").reset_index(drop=True)


def aggregate_ranks(ranks: pd.DataFrame) -> pd.DataFrame:
    """Mean rank of each method across metrics per (dataset, model), best first."""
    agg = (ranks.groupby(["dataset", "model", "method"], as_index=False)
           .agg(mean_rank=("rank", "mean"), n_metrics=("rank", "size")))
    return agg.sort_values(["dataset", "model", "mean_rank", "method"], ignore_index=True)


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau-b of two score vectors (NaN pairs dropped; NaN if undefined).

    tau_b = sum_{i<j} sgn(a_i - a_j) sgn(b_i - b_j) / sqrt(#untied pairs in a * #untied in b),
    computed directly (the inputs are a handful of methods; scipy's call overhead dominates).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    iu = np.triu_indices(len(a), k=1)
    sa = np.sign(a[:, None] - a[None, :])[iu]
    sb = np.sign(b[:, None] - b[None, :])[iu]
    den = np.sqrt(float(np.count_nonzero(sa)) * float(np.count_nonzero(sb)))
    return float(np.sum(sa * sb) / den) if den > 0 else float("nan")


def metric_agreement(summary: pd.DataFrame, higher: dict[str, bool]) -> pd.DataFrame:
    """Kendall tau between every two metrics' method orderings, per (dataset, model).

    Scores are direction-adjusted first, so tau = 1 means both metrics rank the methods
    identically from best to worst. Output: ``dataset, model, metric_a, metric_b, tau, n_methods``.
    """
    s = _scalar_summary(summary)
    recs = []
    for (d, m), g in s.groupby(["dataset", "model"], sort=True):
        w = g.pivot_table(index="method", columns="metric", values="mean", aggfunc="first")
        for ka, kb in itertools.product(sorted(w.columns), repeat=2):
            a = w[ka].to_numpy(float) * (1 if higher[ka] else -1)
            b = w[kb].to_numpy(float) * (1 if higher[kb] else -1)
            recs.append({"dataset": d, "model": m, "metric_a": ka, "metric_b": kb,
                         "tau": kendall_tau(a, b),
                         "n_methods": int((np.isfinite(a) & np.isfinite(b)).sum())})
    return pd.DataFrame(recs, columns=["dataset", "model", "metric_a", "metric_b", "tau", "n_methods"])
