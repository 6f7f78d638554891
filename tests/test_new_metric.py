"""A new metric is one file: a metric of a new category and a new robustness metric, registered
inside these tests exactly as a module under ``metrics/`` would register them, are covered by
the registry-wide metric contract and rendered by the report, with no edit to ``bench/report/``.
Both are unregistered when a test ends."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_metrics_contract import (
    check_independent_of_batch_neighbours,
    check_metadata,
    check_output_shapes_and_nan_policy,
    contract_names,
    make_input,
)
from test_report import run_json, synthetic_rows

from bench.attacks.core import AttackSpec
from bench.data.base import Batch
from bench.pipeline.services import direct_input
from bench.registry import METRIC_CATEGORIES, METRICS
from bench.report import build_report, figures
from bench.report.data import load_report_data
from bench.report.leaderboard import boards
from bench.store.results import ALL_COLUMNS, write_results
from metrics.base import AttackedInputs, ScoreInput, Scores
from metrics.robustness import AttackParams

NEW_CATEGORY = "concentration"
FRACTIONS = (0.1, 0.25, 0.5)


def mass_concentration(inp: ScoreInput, params: None) -> Scores:
    """Share of a map's mass in its top 10/25/50% pixels: curve ``[B, 3]``, value = the mean;
    NaN for an all-zero map (no mass to share)."""
    flat = inp.maps.flatten(1).sort(dim=1, descending=True).values  # [B, HW]
    total = flat.sum(1)
    ks = [max(1, round(f * flat.shape[1])) for f in FRACTIONS]
    curve = torch.stack([flat[:, :k].sum(1) / total for k in ks], 1)  # [B, 3]; 0/0 = NaN
    return Scores(values=curve.mean(1), curve=curve, points=FRACTIONS)


def stability_peak_shift(inp: ScoreInput, params: AttackParams) -> Scores:
    """Distance between the peaks of the clean and the attacked map (fraction of the diagonal)
    vs eps: curve ``[B, E]``, value = the mean over eps."""
    spec = AttackSpec(kind=params.attack, steps=params.steps, step_frac=params.step_frac, eot=1)
    H, W = inp.maps.shape[-2:]

    def peak(maps: torch.Tensor) -> torch.Tensor:  # [B, H, W] -> [B, 2] (row, col)
        i = maps.flatten(1).argmax(1)
        return torch.stack([i // W, i % W], 1).float()

    cols, inputs = [], []
    for eps in params.epsilons:
        inputs.append(inp.attack(spec, eps))  # on the method's model, memoized by the runner
        cols.append((peak(inp.explain(inputs[-1])) - peak(inp.maps)).norm(dim=1) / (H * H + W * W) ** 0.5)
    curve = torch.stack(cols, 1)
    points = tuple(params.epsilons)
    return Scores(values=curve.mean(1), curve=curve, points=points, attacked=AttackedInputs(points, tuple(inputs)))


@pytest.fixture
def new_metrics():
    """The two metrics, registered for one test (as ``@METRICS.register(...)`` in a module would)."""
    with METRICS.temporary("mass_concentration", mass_concentration, summary="Share of the map's mass in its top pixels",
                           category=NEW_CATEGORY, higher_is_better=True, needs=frozenset(), output="curve",
                           per_timestep=True, version="1", reference="test only"), \
         METRICS.temporary("stability_peak_shift", stability_peak_shift,
                           summary="Peak shift between clean and attacked maps vs eps", category="robustness",
                           higher_is_better=False, needs=frozenset({"model", "explainer"}), output="curve",
                           per_timestep=True, version="1", reference="test only", params=AttackParams,
                           attacked=True, step_figure=True):
        yield ["mass_concentration", "stability_peak_shift"]
    assert "mass_concentration" not in METRICS and "stability_peak_shift" not in METRICS


def test_new_metrics_are_covered_by_the_contract(new_metrics):
    assert NEW_CATEGORY not in METRIC_CATEGORIES
    assert set(new_metrics) <= set(contract_names())
    for name in new_metrics:
        check_metadata(name)
        check_output_shapes_and_nan_policy(name)
        check_independent_of_batch_neighbours(name)
    silent = METRICS.get("mass_concentration").obj(make_input(), None).values[2]
    assert torch.isnan(silent)  # make_input's all-zero map


def test_the_contract_fails_a_broken_metric():
    """The contract can fail: a metric whose score depends on its batch neighbours."""
    def batch_mean(inp: ScoreInput, params: None) -> Scores:
        return Scores(values=inp.maps.mean().expand(len(inp.maps)).clone())

    with METRICS.temporary("batch_mean", batch_mean, summary="s", category=NEW_CATEGORY, higher_is_better=True,
                           needs=frozenset(), output="scalar", version="1", reference="test only"):
        check_output_shapes_and_nan_policy("batch_mean")
        with pytest.raises(AssertionError):
            check_independent_of_batch_neighbours("batch_mean")


N, EPS = 24, (2 / 255, 8 / 255)


def score_rows(name: str, model: str, method: str, out: Scores) -> list[dict]:
    """Scores -> results rows as the runner writes them (value row, then one row per point)."""
    base = {"run_id": "syn-1", "dataset": "shapes", "split": "test", "target": 0, "pred": 0, "model": model,
            "method": method, "method_model": model, "layer": "", "metric": name, "timestep": np.nan,
            "degenerate": 0}
    rows = [{**base, "sample_id": i, "point": np.nan, "value": float(v)} for i, v in enumerate(out.values)]
    rows += [{**base, "sample_id": i, "point": p, "value": float(out.curve[i, j])}
             for i in range(len(out.values)) for j, p in enumerate(out.points)]
    return rows


def new_rows() -> pd.DataFrame:
    """Rows of both new metrics, scored by the metric functions on every (model, method) of
    tests/test_report's synthetic run: sharper maps for "good" than for "mid" and "random"."""
    from basic_models import SmallConvNet

    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 1, 8, 8, generator=g)
    batch = Batch(x=x, y=torch.arange(N) % 3, sample_id=torch.arange(N))
    net = SmallConvNet(1, 4, 3)
    rows = []
    for model in ("snn", "ann"):
        for method, power in (("good", 6.0), ("mid", 2.0), ("random", 1.0)):
            def explain(m: torch.nn.Module, xx: torch.Tensor, power: float = power) -> torch.Tensor:
                return xx[:, 0].abs() ** power  # [B, 8, 8]

            inp = direct_input(explain(net, x), batch, model=net, explain=explain, seed=1,
                               data_mean=(0.5,), data_std=(0.25,))
            for name, params in (("mass_concentration", None),
                                 ("stability_peak_shift", AttackParams(epsilons=EPS, steps=2))):
                rows += score_rows(name, model, method, METRICS.get(name).obj(inp, params))
    return pd.DataFrame(rows, columns=list(ALL_COLUMNS))


@pytest.fixture
def run_dir(tmp_path, new_metrics):
    """tests/test_report's synthetic run plus the new metrics' rows; run.json records their
    specs as the runner does (identity fields in versions, report roles in roles), and the
    method "good" is compared with "mid" (a report role of the method spec)."""
    write_results(pd.concat([synthetic_rows(), new_rows()], ignore_index=True), tmp_path / "results.csv")
    run = run_json()
    run["versions"]["metrics"].update({k: METRICS.get(k).record() for k in new_metrics})
    run["roles"] = {"methods": {"good": {"compare_with": ["mid"], "attack_gallery": False}},
                    "metrics": {k: METRICS.get(k).record("role") for k in new_metrics}}
    run["order"] = {"methods": ["good", "mid", "random"], "metrics": ["mass_concentration", "loc", "deletion",
                                                                       "stability_peak_shift", "adv_acc"]}
    (tmp_path / "run.json").write_text(json.dumps(run))
    return tmp_path


def test_new_metrics_are_rendered_by_the_report(run_dir):
    rd = load_report_data(run_dir)
    # a new category comes after the documented ones, whatever the suite order
    assert rd.categories()[-1] == NEW_CATEGORY
    b = {b.model: b for b in boards(rd)}["snn"]
    assert b.metrics == ["loc", "deletion", "stability_peak_shift", "mass_concentration"]
    assert b.cells[("good", "mass_concentration")]["best"]  # the sharpest maps concentrate most mass
    assert rd.pairs() == [("good", "mid")] and rd.step_figure_metrics() == ["stability_peak_shift"]

    out = build_report(run_dir)
    md = (out / "leaderboard.md").read_text()
    assert "mass_concentration ↑" in md and "stability_peak_shift ↓" in md
    figs = {p.name for p in (out / "figures").glob("*.png")}
    assert {f"curves_{NEW_CATEGORY}_shapes.png", "curves_robustness_shapes.png"} <= figs
    html = (out / "report.html").read_text()
    assert f"{NEW_CATEGORY} curves" in html and html.count("data:image/") == len(figs)
    # the new robustness metric enters the paired stability table of the compared methods
    paired = pd.read_csv(out / "paired_stability.csv", keep_default_na=False, na_values=[""])
    assert set(zip(paired["metric"], paired["a"], paired["b"])) == {("stability_peak_shift", "good", "mid")}
    assert sorted(paired.loc[paired["model"] == "snn", "point"]) == pytest.approx(sorted(EPS), rel=1e-5)  # written as %.6g
    tidy = pd.read_csv(out / "leaderboard.csv")
    assert {"mass_concentration", "stability_peak_shift"} <= set(tidy["metric"])

    figures.setup_style()
    titles = {a.get_title() for a in figures.fig_curves(rd, "shapes", NEW_CATEGORY).axes}
    assert titles == {"mass_concentration ↑"}
    titles = {a.get_title() for a in figures.fig_curves(rd, "shapes", "robustness").axes}
    assert titles == {"stability_peak_shift ↓"}
