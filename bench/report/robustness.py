"""The robustness part of a report: the attack audit, its warnings and paired stability tests.

Pure functions of the :class:`~bench.report.data.ReportData` (results + run.json) on top of
:mod:`bench.attacks.audit`; rendered as Markdown (leaderboard.md), HTML (report.html) and tidy
CSV (``audit.csv``, ``paired_stability.csv``) from the same frames, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.attacks import audit
from bench.report.data import ReportData
from bench.report.html import esc
from bench.report.leaderboard import ARROW, frame_markdown


def alpha(rd: ReportData) -> float:
    return float(rd.run.get("config", {}).get("report", {}).get("alpha", 0.05))


def audit_metrics(rd: ReportData) -> audit.AuditMetrics:
    """Which of the run's metrics plays which audit role (from their specs)."""
    return audit.AuditMetrics(**rd.audit_metrics())


def whitebox_params(rd: ReportData) -> dict:
    """The white-box attack's suite parameters (``eot``, ``steps``, ...; empty for old runs):
    those of the accuracy-under-attack metric, else of the white-box success metric."""
    for metric in audit_metrics(rd).names("accuracy", "whitebox"):
        params = rd.metric_params(metric)
        if params:
            return params
    return {}


def audit_frame(rd: ReportData) -> pd.DataFrame:
    """:func:`bench.attacks.audit.audit_table` of the run, with the run's EOT setting (the
    audit's own default only when run.json does not record it) and ``eps_255`` = eps x 255."""
    eot, roles = whitebox_params(rd).get("eot"), audit_metrics(rd)
    table = (audit.audit_table(rd.results, roles=roles) if eot is None
             else audit.audit_table(rd.results, eot=int(eot), roles=roles))
    table.insert(3, "eps_255", table["point"] * 255.0)
    return table


def has_audit(rd: ReportData) -> bool:
    return bool(rd.results["metric"].isin(audit_metrics(rd).names(*audit.ATTACKS, "zero_gradient")).any())


def warnings(rd: ReportData) -> list[str]:
    """:func:`bench.attacks.audit.audit_warnings` at the report's alpha."""
    return audit.audit_warnings(rd.results, alpha=alpha(rd), zero_grad_max=audit.ZERO_GRAD_MAX,
                                roles=audit_metrics(rd))


def checked(rd: ReportData) -> str:
    """What the audit checked, in one sentence (said also when nothing was found)."""
    p = whitebox_params(rd)
    kind = str(p.get("attack", "pgd")).upper()
    kind += f"-{p['steps']}" if kind == "PGD" and "steps" in p else ""
    attack = f"{kind}, EOT {p.get('eot', '?')} on Poisson input" if p else "white-box attack"
    return (f"checked: per model and eps, white-box success ({attack}) against the transfer attack "
            f"and random-sign noise on the same samples (one-sided exact McNemar, alpha {alpha(rd):g}); "
            f"share of exactly-zero input gradients <= {audit.ZERO_GRAD_MAX:g}")


# -- paired stability -----------------------------------------------------------------------
def pair_cells(rd: ReportData, method_a: str, method_b: str) -> list[tuple[str, str, tuple[str, str], tuple[str, str]]]:
    """``(dataset, model, (method_a, model), (method_b, its method_model))`` for every probed
    model that has rows of ``method_a`` run on itself and of ``method_b`` (run anywhere)."""
    r = rd.results[rd.results["method"].isin([method_a, method_b])]
    out = []
    for (dataset, model), g in r.groupby(["dataset", "model"], sort=True):
        a = g[(g["method"] == method_a) & (g["method_model"] == model)]
        b = g[g["method"] == method_b]
        if len(a) and len(b):
            out.append((dataset, model, (method_a, model), (method_b, rd.method_model(model, method_b))))
    models = rd.run.get("models", [])
    return sorted(out, key=lambda c: (c[0], models.index(c[1]) if c[1] in models else len(models), c[1]))


def stability_metrics(rd: ReportData, df: pd.DataFrame) -> list[str]:
    """Explanation-scope robustness metrics with curve rows in ``df``, in report order."""
    curves = df[(df["method"] != "") & df["point"].notna()]["metric"].unique()
    return [k for k in rd.metric_order(curves) if rd.metric_meta.get(k, {}).get("category") == "robustness"]


def paired_frame(rd: ReportData, pairs: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
    """:func:`bench.attacks.audit.paired_stability` of every pair in ``pairs`` (default: the
    method specs' ``compare_with``, :meth:`ReportData.pairs`; e.g. SAM on the SNN vs Grad-CAM
    on its ANN twin, the paper's stability claim) on every model and stability metric, as one
    tidy table: ``dataset, model, metric, higher_is_better, a,
    a_model, b, b_model`` + the per-eps columns (``diff_mean`` = mean of a - b) + ``eps_255``
    and ``better`` (the side whose mean is better, where the Holm-corrected Wilcoxon p < alpha
    and the bootstrap CI of the mean difference excludes 0; else empty)."""
    cfg = rd.run.get("config", {}).get("report", {})
    n_boot, ci, seed = int(cfg.get("n_boot", 1000)), float(cfg.get("ci", 0.95)), int(rd.run.get("seed", 0))
    parts = []
    for method_a, method_b in rd.pairs() if pairs is None else pairs:
        for dataset, model, a, b in pair_cells(rd, method_a, method_b):
            df = rd.results[(rd.results["dataset"] == dataset) & (rd.results["model"] == model)]
            for metric in stability_metrics(rd, df):
                t = audit.paired_stability(df, metric, a, b, n_boot=n_boot, ci=ci, seed=seed)
                if not len(t):
                    continue
                hib = rd.higher.get(metric, True)
                sign = np.sign(t["diff_mean"].to_numpy(float)) * (1 if hib else -1)
                winner = np.where(sign > 0, a[0], np.where(sign < 0, b[0], ""))
                # both must agree: the Wilcoxon test is about location (it can be significant
                # while the mean difference is ~0), the CI is about the mean that the table shows
                lo, hi = t["ci_lo"].to_numpy(float), t["ci_hi"].to_numpy(float)
                sure = (t["p_holm"].to_numpy(float) < alpha(rd)) & ((lo > 0) | (hi < 0))
                better = np.where(sure, winner, "")
                parts.append(t.assign(dataset=dataset, model=model, metric=metric, higher_is_better=hib,
                                      a=a[0], a_model=a[1], b=b[0], b_model=b[1],
                                      eps_255=t["point"] * 255.0, better=better))
    cols = ["dataset", "model", "metric", "higher_is_better", "a", "a_model", "b", "b_model", "point", "eps_255",
            "n_pairs", "mean_a", "mean_b", "diff_mean", "ci_lo", "ci_hi", "p", "p_holm", "better"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


# -- display --------------------------------------------------------------------------------
def _f(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if np.isfinite(v) else "-"


def _p(v: float) -> str:
    return f"{v:.2g}" if np.isfinite(v) else "-"


def audit_display(table: pd.DataFrame) -> pd.DataFrame:
    """The audit table as strings: eps in 1/255, rates with 3 decimals, p-values with 2 digits."""
    out = pd.DataFrame({"model": table["model"], "eps": [f"{e:.3g}/255" for e in table["eps_255"]]})
    for col in ("clean_acc", "adv_acc", "success_whitebox", "success_transfer", "success_noise",
                "gap_transfer", "gap_noise"):
        out[col] = [_f(v) for v in table[col]]
    for col in ("p_transfer", "p_noise"):
        out[col] = [_p(v) for v in table[col]]
    out["zero_grad"] = [_f(v) for v in table["zero_grad"]]
    for col in ("encoding", "surrogate", "eot"):
        out[col] = table[col].astype(str).to_numpy()
    return out


AUDIT_NOTE = ("success rates are over the samples correct on the clean input; gap = white-box minus "
              "transfer/noise success (should be >= 0); p = one-sided McNemar p that the other attack "
              "is stronger; zero_grad = share of exactly-zero input gradients; eot = encoding samples "
              "per white-box gradient")


def paired_display(g: pd.DataFrame) -> pd.DataFrame:
    """One comparison's rows as strings (metric with its direction arrow)."""
    return pd.DataFrame({
        "metric": [f"{k} {ARROW[bool(h)]}" for k, h in zip(g["metric"], g["higher_is_better"])],
        "eps": [f"{e:.3g}/255" for e in g["eps_255"]], "n_pairs": g["n_pairs"].astype(int).to_numpy(),
        f"mean {g['a'].iloc[0]}": [_f(v) for v in g["mean_a"]],
        f"mean {g['b'].iloc[0]}": [_f(v) for v in g["mean_b"]],
        "diff (a - b) [CI]": [f"{_f(d)} [{_f(lo)}, {_f(hi)}]"
                              for d, lo, hi in zip(g["diff_mean"], g["ci_lo"], g["ci_hi"])],
        "Wilcoxon p": [_p(v) for v in g["p"]], "Holm p": [_p(v) for v in g["p_holm"]],
        "better": g["better"].replace("", "-").to_numpy()})


def paired_title(g: pd.DataFrame) -> str:
    r = g.iloc[0]
    return f"{r.a} on {r.a_model} vs {r.b} on {r.b_model} ({r.dataset})"


def paired_note(rd: ReportData) -> str:
    cfg = rd.run.get("config", {}).get("report", {})
    return (f"paired over the same samples per eps; diff = a - b with {cfg.get('ci', 0.95):.0%} bootstrap CI "
            f"({cfg.get('n_boot', 1000)} resamples); Wilcoxon signed-rank, Holm over the eps of one metric; "
            f"↑ higher is better, ↓ lower is better (stability_com_shift: a smaller shift is more stable), "
            f"so a negative diff favours a on ↓ metrics; better: the more stable side where Holm p < {alpha(rd):g} "
            f"and the CI of the mean difference excludes 0")


def paired_groups(paired: pd.DataFrame) -> list[pd.DataFrame]:
    keys = ["dataset", "model", "a", "a_model", "b", "b_model"]
    return [g for _, g in paired.groupby(keys, sort=False)] if len(paired) else []


def markdown(rd: ReportData, table: pd.DataFrame, warns: list[str], paired: pd.DataFrame) -> list[str]:
    """Leaderboard.md lines: "Robustness audit" (warnings first, then the audit table per
    dataset) and "Paired stability under attack" (one table per comparison)."""
    lines: list[str] = []
    if has_audit(rd):
        lines += ["## Robustness audit", ""]
        if warns:
            lines += [f"**Audit warnings ({len(warns)})**: robustness may be overestimated.", ""]
            lines += [f"- ⚠ {w}" for w in warns] + ["", f"({checked(rd)})"]
        else:
            lines += [f"No audit warnings ({checked(rd)})."]
        lines += ["", AUDIT_NOTE + ".", ""]
        for dataset, g in table.groupby("dataset", sort=True):
            head = [f"### {dataset}", ""] if table["dataset"].nunique() > 1 else []
            lines += head + [frame_markdown(audit_display(g)), ""]
    if len(paired):
        lines += ["## Paired stability under attack", "", paired_note(rd) + ".", ""]
        for g in paired_groups(paired):
            lines += [f"### {paired_title(g)}", "", frame_markdown(paired_display(g)), ""]
    return lines


def warning_html(rd: ReportData, warns: list[str]) -> str:
    """The box at the top of report.html (empty when the run has no attack audit)."""
    if not has_audit(rd):
        return ""
    if warns:
        items = "".join(f"<li>{esc(w)}</li>" for w in warns)
        return (f'<div class="warn"><b>Attack audit: {len(warns)} warning(s)</b> (robustness may be '
                f"overestimated)<ul>{items}</ul><span class='note'>{esc(checked(rd))}</span></div>")
    return f'<div class="ok"><b>No audit warnings</b> ({esc(checked(rd))})</div>'
