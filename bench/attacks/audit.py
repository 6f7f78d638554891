"""The attack-strength audit and the paired stability comparison, from a results table.

Pure functions of a DataFrame in the results schema (one row per sample, metric and point).
A robustness number is credible only if the white-box attack is at least as strong as a
transfer attack and a random-noise control at the same eps, and its gradients do not vanish
(Athalye et al. 2018); :func:`audit_warnings` says where that fails. "Weaker" is judged on the
same samples with an exact one-sided McNemar test (discordant pairs), not on raw rates, so a
difference of one or two samples in a small run raises no alarm.

Which metric plays which part (accuracy under attack, the three success rates, the
zero-gradient share) is the metric spec's ``audit_role``, passed in as :class:`AuditMetrics`
(default: the registered metrics), never a list of names here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from bench.stats import bootstrap_ci, holm, wilcoxon_p

#: the attacks whose success rates the audit compares, white-box first
ATTACKS = ("whitebox", "transfer", "noise")
#: largest tolerated mean share of exactly-zero input gradients (above: vanishing gradients)
ZERO_GRAD_MAX = 0.5


@dataclasses.dataclass(frozen=True)
class AuditMetrics:
    """The metric of each audit role (:data:`bench.registry.AuditRole`); None where none.

    accuracy: accuracy under the white-box attack vs eps (point 0 = clean). whitebox /
    transfer / noise: success rates of the white-box, transfer and random-noise attacks vs eps.
    zero_gradient: share of exactly-zero input gradients.
    """

    accuracy: str | None = None
    whitebox: str | None = None
    transfer: str | None = None
    noise: str | None = None
    zero_gradient: str | None = None

    @classmethod
    def registered(cls) -> AuditMetrics:
        """The registered metric of each role (the first by name)."""
        from bench.registry import METRICS

        roles: dict[str, str] = {}
        for e in METRICS.entries():
            if e.spec.audit_role is not None:
                roles.setdefault(e.spec.audit_role, e.name)
        return cls(**roles)

    @property
    def success(self) -> dict[str, str | None]:
        """``{attack: its success-rate metric}`` for :data:`ATTACKS`."""
        return {a: getattr(self, a) for a in ATTACKS}

    def names(self, *roles: str) -> list[str]:
        """The metrics of ``roles`` that exist."""
        return [m for r in roles if (m := getattr(self, r)) is not None]


def _card_facts(model: str) -> dict[str, str]:
    """Encoding and surrogate of a zoo model ("" when the name is not in the zoo)."""
    try:
        from bench.models import get_card

        card = get_card(model)
    except Exception:  # a results table may name models this checkout does not register
        return {"encoding": "", "surrogate": ""}
    surrogate = card.neuron.surrogate if card.neuron is not None else ""
    return {"encoding": card.encoding, "surrogate": surrogate}


def audit_table(df: pd.DataFrame, eot: int = 8, roles: AuditMetrics | None = None) -> pd.DataFrame:
    """One row per (dataset, model, eps): accuracy, success rates, their gaps, zero-gradient share.

    Columns: ``dataset, model, point, clean_acc, adv_acc, success_whitebox, success_transfer,
    success_noise, gap_transfer`` (white-box minus transfer), ``gap_noise``, ``zero_grad``,
    ``encoding, surrogate, eot`` (EOT samples the white-box attack used: ``eot`` for Poisson
    input, else 1). Success rates are NaN-means (over samples correct on the clean input).
    ``roles``: which metric is which (default :meth:`AuditMetrics.registered`).
    """
    roles = AuditMetrics.registered() if roles is None else roles
    success = roles.success
    rows = df[df["metric"].isin(roles.names(*ATTACKS, "accuracy"))]
    cells = rows.groupby(["dataset", "model", "metric", "point"])["value"].mean().unstack("metric")
    zero = zero_gradient_share(df, roles)
    succ = df[df["metric"].isin(roles.names(*ATTACKS)) & df["point"].notna()]
    wide = succ.pivot_table(index=["dataset", "model", "point", "sample_id"], columns="metric",
                            values="value", aggfunc="first")
    pairs = {k: g for k, g in wide.groupby(level=[0, 1, 2])} if len(wide) else {}
    out = []
    for (dataset, model), g in cells.groupby(level=[0, 1], sort=True):
        g = g.droplevel([0, 1])
        col = lambda metric, point: g.at[point, metric] if metric in g and point in g.index else np.nan
        facts = _card_facts(model)
        for point in sorted(p for p in g.index if p > 0):
            rec = {"dataset": dataset, "model": model, "point": point,
                   "clean_acc": col(roles.accuracy, 0.0), "adv_acc": col(roles.accuracy, point)}
            for short, metric in success.items():
                rec[f"success_{short}"] = col(metric, point)
            rec["gap_transfer"] = rec["success_whitebox"] - rec["success_transfer"]
            rec["gap_noise"] = rec["success_whitebox"] - rec["success_noise"]
            for other in ("transfer", "noise"):
                rec[f"p_{other}"] = stronger_p(pairs.get((dataset, model, point)), other, roles)
            rec["zero_grad"] = zero.get((dataset, model), np.nan)
            rec.update(facts, eot=eot if facts["encoding"].startswith("poisson") else 1)
            out.append(rec)
    cols = ["dataset", "model", "point", "clean_acc", "adv_acc", *(f"success_{k}" for k in ATTACKS),
            "gap_transfer", "gap_noise", "p_transfer", "p_noise", "zero_grad", "encoding", "surrogate", "eot"]
    return pd.DataFrame(out, columns=cols)


def stronger_p(wide: pd.DataFrame | None, other: str, roles: AuditMetrics) -> float:
    """One-sided exact McNemar p-value that attack ``other`` succeeds more often than the
    white-box attack on the same samples (1.0 when there are no discordant samples)."""
    cols = (roles.whitebox, roles.success[other])
    if wide is None or not all(c is not None and c in wide for c in cols):
        return float("nan")
    w, o = (wide[c].to_numpy(float) for c in cols)
    ok = np.isfinite(w) & np.isfinite(o)
    only_other = int(((o == 1) & (w == 0) & ok).sum())
    only_white = int(((w == 1) & (o == 0) & ok).sum())
    if only_other + only_white == 0:
        return 1.0
    return float(binomtest(only_other, only_other + only_white, 0.5, alternative="greater").pvalue)


def zero_gradient_share(df: pd.DataFrame, roles: AuditMetrics) -> pd.Series:
    """Mean of the zero-gradient metric per (dataset, model)."""
    return df[df["metric"] == roles.zero_gradient].groupby(["dataset", "model"])["value"].mean()


def audit_warnings(df: pd.DataFrame, alpha: float = 0.05, zero_grad_max: float = ZERO_GRAD_MAX,
                   roles: AuditMetrics | None = None) -> list[str]:
    """Warnings that a model's robustness may be overestimated (gradient masking).

    - the transfer or noise attack succeeds significantly more often than the white-box attack
      on the same samples at some eps (one-sided exact McNemar test, p < ``alpha``);
    - on average more than ``zero_grad_max`` of the input gradient is exactly zero.

    ``roles``: which metric is which (default :meth:`AuditMetrics.registered`).
    """
    roles = AuditMetrics.registered() if roles is None else roles
    out = []
    for r in audit_table(df, roles=roles).itertuples(index=False):
        for other in ("transfer", "noise"):
            theirs, p = getattr(r, f"success_{other}"), getattr(r, f"p_{other}")
            if p < alpha:
                out.append(f"{r.dataset}/{r.model} eps={r.point * 255:.3g}/255: white-box success "
                           f"{r.success_whitebox:.1%} < {other} {theirs:.1%} (McNemar p={p:.2g}; "
                           f"gradient masking?)")
    for (dataset, model), share in zero_gradient_share(df, roles).items():
        if share > zero_grad_max:
            out.append(f"{dataset}/{model}: {share:.0%} of the input gradient is exactly zero "
                       f"(vanishing gradients: white-box numbers are not credible)")
    return out


def paired_stability(df: pd.DataFrame, metric: str, a: tuple[str, str], b: tuple[str, str],
                     n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Paired comparison of two (method, method_model) cells on the same samples, per eps.

    E.g. ``a=("sam", "vgg5_snn_t8")``, ``b=("ann_gradcam", "vgg5_ann")``: SAM on the SNN vs
    Grad-CAM on its ANN twin. Pairs are matched on (dataset, sample_id, point) over
    time-aggregated rows. Output per eps: ``point, n_pairs, mean_a, mean_b, diff_mean, ci_lo,
    ci_hi`` (bootstrap CI of the mean of a - b), ``p`` (Wilcoxon signed-rank) and ``p_holm``
    (Holm over the eps of this comparison). Positive diff = a scores higher.
    """
    rows = df[(df["metric"] == metric) & df["timestep"].isna() & df["point"].notna()]

    def side(method: str, method_model: str) -> pd.Series:
        s = rows[(rows["method"] == method) & (rows["method_model"] == method_model)]
        return s.groupby(["dataset", "sample_id", "point"])["value"].mean()

    both = pd.concat({"a": side(*a), "b": side(*b)}, axis=1).dropna()
    recs = []
    for point, g in both.groupby(level="point", sort=True):
        d = (g["a"] - g["b"]).to_numpy(float)
        mean, lo, hi = bootstrap_ci(d, n_boot=n_boot, ci=ci, seed=seed,
                                    key=f"paired|{metric}|{a}|{b}|{point}")
        recs.append({"point": float(point), "n_pairs": len(d), "mean_a": g["a"].mean(),
                     "mean_b": g["b"].mean(), "diff_mean": mean, "ci_lo": lo, "ci_hi": hi,
                     "p": wilcoxon_p(g["a"].to_numpy(float), g["b"].to_numpy(float))})
    out = pd.DataFrame(recs, columns=["point", "n_pairs", "mean_a", "mean_b", "diff_mean",
                                      "ci_lo", "ci_hi", "p"])
    out["p_holm"] = holm(out["p"].to_numpy()) if len(out) else []
    return out
