"""Known answers for bench.stats: bootstrap CIs, Holm, Wilcoxon, ranks, Kendall agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from bench import stats


def table(values: dict[tuple[str, str], list[float]], model: str = "m") -> pd.DataFrame:
    """Scalar rows in the results schema from {(method, metric): per-sample values}."""
    recs = [{"dataset": "d", "model": model, "method": meth, "metric": k, "sample_id": i,
             "timestep": np.nan, "point": np.nan, "value": v}
            for (meth, k), vals in values.items() for i, v in enumerate(vals)]
    return pd.DataFrame(recs)


def test_bootstrap_ci_covers_the_mean_and_matches_the_normal_width():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 1.0, size=400)
    mean, lo, hi = stats.bootstrap_ci(x, n_boot=2000, seed=0, key="a")
    assert mean == pytest.approx(x.mean())
    assert lo < x.mean() < hi
    se = x.std(ddof=1) / np.sqrt(len(x))
    # percentile bootstrap of a mean ~ mean +- 1.96 se
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_bootstrap_is_seeded_and_keyed():
    x = np.arange(50, dtype=float)
    assert stats.bootstrap_ci(x, seed=3, key="k") == stats.bootstrap_ci(x, seed=3, key="k")
    assert stats.bootstrap_ci(x, seed=3, key="k") != stats.bootstrap_ci(x, seed=3, key="other")


def test_bootstrap_ignores_nan_and_constant_data_has_zero_width():
    mean, lo, hi = stats.bootstrap_ci(np.array([2.0, np.nan, 2.0, 2.0]), n_boot=100)
    assert (mean, lo, hi) == (2.0, 2.0, 2.0)


def test_bootstrap_means_equal_explicit_resampling():
    x = np.array([[1.0, 10.0], [2.0, np.nan], [4.0, 30.0]])
    rng1, rng2 = np.random.default_rng(5), np.random.default_rng(5)
    got = stats.bootstrap_means(x, 7, rng1)
    idx = rng2.integers(0, 3, size=(7, 3))
    want = np.nanmean(x[idx], axis=1)
    np.testing.assert_allclose(got, want)


def test_summarize_curves_and_scalars():
    df = table({("a", "k"): [1.0, 2.0, 3.0]})
    curve = df.assign(point=0.5, value=df["value"] * 10)
    out = stats.summarize(pd.concat([df, curve]), n_boot=50)
    scalar = out[out["point"].isna()].iloc[0]
    assert scalar["mean"] == 2.0 and scalar["n"] == 3 and scalar["n_nan"] == 0
    pt = out[out["point"] == 0.5].iloc[0]
    assert pt["mean"] == 20.0 and pt["ci_lo"] <= 20.0 <= pt["ci_hi"]


def test_holm_known_values():
    # p sorted: 0.01*4=0.04, 0.02*3=0.06, 0.03*2=0.06 (monotone), 0.04*1 -> max(0.06, 0.04)
    got = stats.holm([0.03, 0.01, 0.04, 0.02])
    np.testing.assert_allclose(got, [0.06, 0.04, 0.06, 0.06])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])
    got = stats.holm([np.nan, 0.01])
    assert np.isnan(got[0]) and got[1] == pytest.approx(0.01)


def test_wilcoxon_matches_scipy_and_handles_ties():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30) + 0.5
    assert stats.wilcoxon_p(a, b) == pytest.approx(sps.wilcoxon(a - b).pvalue)
    assert stats.wilcoxon_p(a, a) == 1.0
    tied = np.array([1.0, 1.0, 2.0, -1.0, 3.0, 0.0] * 10)   # ties and zeros: normal approximation
    assert stats.wilcoxon_p(tied, np.zeros_like(tied)) == pytest.approx(
        sps.wilcoxon(tied, method="approx").pvalue)
    assert np.isnan(stats.wilcoxon_p(np.array([np.nan]), np.array([1.0])))


def test_adjacent_tests_mark_a_clear_winner():
    rng = np.random.default_rng(2)
    n = 40
    good = rng.uniform(0.8, 1.0, n)
    df = table({("good", "acc"): good.tolist(), ("bad", "acc"): (good - 0.5).tolist(),
                ("worse", "acc"): (good - 0.5 + rng.normal(0, 1e-3, n)).tolist()})
    summ = stats.summarize(df, n_boot=50)
    t = stats.adjacent_tests(df, summ, {"acc": True}).set_index("method_a")
    assert t.loc["good", "method_b"] in ("bad", "worse") and t.loc["good", "better"]
    assert t.loc["good", "p_holm"] < 1e-6
    assert len(t) == 2


def test_ranks_respect_direction():
    df = table({("a", "up"): [3.0], ("b", "up"): [1.0], ("a", "down"): [3.0], ("b", "down"): [1.0]})
    r = stats.rank_methods(stats.summarize(df, n_boot=10), {"up": True, "down": False})
    r = r.set_index(["metric", "method"])["rank"]
    assert r[("up", "a")] == 1 and r[("up", "b")] == 2
    assert r[("down", "a")] == 2 and r[("down", "b")] == 1
    agg = stats.aggregate_ranks(stats.rank_methods(stats.summarize(df, n_boot=10), {"up": True, "down": False}))
    assert set(agg["mean_rank"]) == {1.5}


def test_kendall_agreement_known_answers():
    vals = {("a", "k1"): [3.0], ("b", "k1"): [2.0], ("c", "k1"): [1.0],
            ("a", "k2"): [30.0], ("b", "k2"): [20.0], ("c", "k2"): [10.0],   # same ranking
            ("a", "k3"): [1.0], ("b", "k3"): [2.0], ("c", "k3"): [3.0]}      # lower is better: same
    summ = stats.summarize(table(vals), n_boot=10)
    ag = stats.metric_agreement(summ, {"k1": True, "k2": True, "k3": False})
    tau = ag.set_index(["metric_a", "metric_b"])["tau"]
    assert tau[("k1", "k2")] == pytest.approx(1.0)
    assert tau[("k1", "k3")] == pytest.approx(1.0)
    ag = stats.metric_agreement(summ, {"k1": True, "k2": False, "k3": False})
    assert ag.set_index(["metric_a", "metric_b"])["tau"][("k1", "k2")] == pytest.approx(-1.0)
    assert stats.kendall_tau(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 4, 12).astype(float), rng.integers(0, 4, 12).astype(float)  # with ties
    assert stats.kendall_tau(a, b) == pytest.approx(sps.kendalltau(a, b).statistic)
    assert np.isnan(stats.kendall_tau(np.ones(4), np.arange(4.0)))
