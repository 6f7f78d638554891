"""Discriminative power (bench.report.power): separated pairs and CI half-widths, known answers."""

import numpy as np
import pandas as pd

from bench.report import power
from bench.stats import summarize


def _rows(method: str, values, timestep=np.nan) -> list[dict]:
    return [{"dataset": "d", "model": "m", "method": method, "metric": "pointing_game", "sample_id": i,
             "timestep": timestep, "point": np.nan, "value": float(v)} for i, v in enumerate(values)]


def test_power_counts_separated_pairs_and_ignores_per_step_rows():
    n = 40
    rng = np.random.default_rng(0)
    half = rng.permutation(np.arange(n) % 2)
    df = pd.DataFrame(_rows("always", np.ones(n)) + _rows("never", np.zeros(n)) + _rows("half", half)
                      # a per-step row set with a wide CI: must not enter the column's half-width
                      + _rows("always", half[:8], timestep=0))
    table = power.power_table(df, summarize(df, n_boot=200), alpha=0.05)
    row = table.iloc[0]
    # always vs never and each vs half differ on >= 20 samples: all three pairs separate
    assert (row.n_methods, row.n_pairs, row.separated, row.n_samples) == (3, 3, 3, n)
    # the widest aggregate CI is the coin-flip method's (about +-0.16), not the per-step row's
    agg = summarize(df[df["timestep"].isna()], n_boot=200)
    expected = ((agg["ci_hi"] - agg["ci_lo"]) / 2).max()
    assert row.max_ci_half_width == expected and 0.1 < expected < 0.25
    assert power.headline(table, ("pointing_game", "deletion"))["pointing_game: separated pairs"].tolist() == ["3/3"]
