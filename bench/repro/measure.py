"""Measurements from a results table: a mean with its CI, and paired comparisons.

Everything reuses :mod:`bench.stats` (the percentile bootstrap of :func:`bench.stats.bootstrap_ci`,
keyed per comparison; :func:`bench.stats.wilcoxon_p`; :func:`bench.stats.holm`), so a number on
a reproduction page is computed exactly like the report's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.repro.verdict import outcome
from bench.stats import bootstrap_ci, holm, wilcoxon_p
from bench.store.results import read_results

N_BOOT, CI, SEED = 1000, 0.95, 0


def load(run_dir: str | Path) -> pd.DataFrame:
    """The results table of a finished run directory (results.csv or results.csv.gz)."""
    d = Path(run_dir)
    for name in ("results.csv", "results.csv.gz"):
        if (d / name).exists():
            return read_results(d / name)
    raise BenchError(f"{d}: no results.csv (run the analysis first)")


def values(df: pd.DataFrame, metric: str, method: str, model: str, timestep: float | None = None) -> pd.Series:
    """Per-sample scalar values of one cell (``point`` empty), indexed by sample_id; one time
    step's rows when ``timestep`` is given, else the time-aggregated rows."""
    r = df[(df["metric"] == metric) & (df["method"] == method) & (df["model"] == model) & df["point"].isna()]
    r = r[r["timestep"].isna()] if timestep is None else r[r["timestep"] == float(timestep)]
    return r.groupby("sample_id")["value"].mean()


@dataclasses.dataclass(frozen=True)
class Mean:
    """A NaN-ignoring mean over samples with its bootstrap CI."""

    n: int
    mean: float
    lo: float
    hi: float

    def text(self, digits: int = 3) -> str:
        if not np.isfinite(self.mean):
            return "-"
        return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def mean_ci(x: pd.Series | np.ndarray, key: str) -> Mean:
    a = np.asarray(x, dtype=float)
    if not np.isfinite(a).any():
        return Mean(0, float("nan"), float("nan"), float("nan"))
    m, lo, hi = bootstrap_ci(a, n_boot=N_BOOT, ci=CI, seed=SEED, key=key)
    return Mean(int(np.isfinite(a).sum()), m, lo, hi)


@dataclasses.dataclass
class Comparison:
    """a vs b on the same samples; ``claimed_sign`` +1: the claim says a - b > 0."""

    label: str            # the condition, e.g. "conv1, pointing_game"
    metric: str
    a: str
    b: str
    claimed_sign: int
    n: int
    mean_a: float
    mean_b: float
    diff: Mean
    p: float
    p_holm: float = float("nan")
    outcome: str = ""


def compare(label: str, metric: str, a: pd.Series, b: pd.Series, a_name: str, b_name: str,
            claimed_sign: int) -> Comparison:
    """Pair ``a`` and ``b`` (per-sample values indexed by sample_id) on their common finite samples."""
    both = pd.concat({"a": a, "b": b}, axis=1).dropna()
    d = (both["a"] - both["b"]).to_numpy(float)
    return Comparison(label=label, metric=metric, a=a_name, b=b_name, claimed_sign=claimed_sign,
                      n=len(d), mean_a=float(both["a"].mean()) if len(d) else float("nan"),
                      mean_b=float(both["b"].mean()) if len(d) else float("nan"),
                      diff=mean_ci(d, f"repro|{label}|{metric}|{a_name}|{b_name}"),
                      p=wilcoxon_p(both["a"].to_numpy(float), both["b"].to_numpy(float)))


def decide(comps: list[Comparison], alpha: float = 0.05) -> list[Comparison]:
    """Holm over the family ``comps`` (one claim), then each comparison's outcome (in place)."""
    adj = holm([c.p for c in comps]) if comps else []
    for c, ph in zip(comps, adj):
        c.p_holm = float(ph)
        c.outcome = outcome(c.diff.lo, c.diff.hi, c.p_holm, c.claimed_sign, alpha)
    return comps


def accuracy(df: pd.DataFrame, model: str) -> Mean:
    """Clean accuracy of ``model`` on the run's samples (``pred == target`` per sample)."""
    r = df[df["model"] == model].drop_duplicates("sample_id")
    hit = (r["pred"].astype(int) == r["target"].astype(int)).astype(float).to_numpy()
    return mean_ci(hit, f"accuracy|{model}")

