"""Compare two runs of the same suite (e.g. on CPU and on CUDA): ``python scripts/compare_runs.py A B``.

Joins the two results tables on their keys and prints, per metric, the number of rows, the
largest absolute difference and the share of rows that differ by more than 1e-3, and the share
of samples whose prediction agrees. Exit status 1 if the tables do not have the same rows.
"""

from __future__ import annotations

import sys

from bench.store.results import read_results

KEYS = ["sample_id", "model", "method", "method_model", "metric", "timestep", "point"]


def main(a: str, b: str) -> int:
    ra, rb = read_results(a), read_results(b)
    j = ra.merge(rb, on=KEYS, how="outer", suffixes=("_a", "_b"), indicator=True)
    only = (j["_merge"] != "both").sum()
    both = j[j["_merge"] == "both"].copy()
    both["diff"] = (both["value_a"] - both["value_b"]).abs()
    nan_mismatch = both["value_a"].isna() != both["value_b"].isna()
    out = both.groupby("metric").agg(rows=("diff", "size"), max_abs_diff=("diff", "max"),
                                     share_gt_1e3=("diff", lambda d: float((d > 1e-3).mean())))
    print(out.to_string(float_format=lambda v: f"{v:.3g}"))
    preds = both.drop_duplicates(["sample_id", "model"])
    print(f"prediction agreement: {(preds['pred_a'] == preds['pred_b']).mean():.4f} over {len(preds)} (sample, model)")
    print(f"rows only in one run: {only}; NaN in one run only: {int(nan_mismatch.sum())}")
    return 1 if only else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/compare_runs.py RUN_A RUN_B")
    sys.exit(main(sys.argv[1], sys.argv[2]))
