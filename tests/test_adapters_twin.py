"""What needs an ANN twin, on a user's own SNN (which has none): skipped with a logged reason.

``ann_*`` methods run on the probed SNN's twin and the transfer attack
(``attack_success_transfer``) crafts its inputs on it. An adapted model names no twin, so the
plan (bench/pipeline/plan.py) skips both for it -- each with a reason in ``run.json`` (``skipped``) and
in the run's summary -- and runs the rest of the suite, instead of failing half-way through
the run (as the transfer attack did). A transfer ``source`` naming a model is used as given;
an unknown one is refused before any work."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from basic_models import SNNTORCH_USER_FILE

from bench.cli import main as cli
from bench.errors import BenchError
from bench.pipeline.plan import make_plan
from bench.suite import load_suite

pytest.importorskip("snntorch")

SUITE = """
[run]
n_samples = 4
batch_size = 4
examples = 0
[data]
dataset = "shapes"
[data.params]
image_size = 16
[models.my_net]
adapter = "snntorch"
source = "{src}:build"
T = 2
[methods.sam]
[methods.ann_gradcam]
[metrics.pointing_game]
[metrics.attack_success_transfer]
epsilons = [0.03]
steps = 1
eot = 1
[metrics.attack_zero_gradient]
eot = 1
[report]
n_boot = 10
"""
REASON = ("'attack_success_transfer' crafts its attacks on the twin of 'my_net', which names none "
          "(set metrics.attack_success_transfer.source to the model to craft on, or drop the metric)")


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    (tmp_path / "my_net.py").write_text(textwrap.dedent(SNNTORCH_USER_FILE))
    path = tmp_path / "mine.toml"
    path.write_text(SUITE.format(src=tmp_path / "my_net.py"))
    return path


def test_the_plan_skips_what_needs_a_twin_with_its_reason(suite_file: Path):
    plan = make_plan(load_suite(suite_file))
    assert plan.skipped_cells == [{"model": "my_net", "method": "ann_gradcam", "metric": "",
                                   "reason": "'ann_gradcam' runs on the ANN twin and 'my_net' names none"}]
    assert plan.skipped_model_metrics == [{"model": "my_net", "method": "", "metric": "attack_success_transfer",
                                           "reason": REASON}]
    assert [m.name for m in plan.model_metrics_for("my_net")] == ["attack_zero_gradient"]
    assert [(c.model, c.method) for c in plan.cells] == [("my_net", "sam"), ("my_net", "")]
    # with no model-scope metric left to score, the model-scope cell goes too
    alone = make_plan(load_suite(suite_file, ['metrics={"pointing_game" = {}, "attack_success_transfer" = {}}']))
    assert [(c.model, c.method) for c in alone.cells] == [("my_net", "sam")]
    # the run's identity is the suite's: a skip is decided from it, not hashed beside it
    assert "attack_success_transfer" in plan.versions["metrics"]


def test_a_named_source_is_used_and_an_unknown_one_refused_before_any_work(suite_file: Path, tmp_path, capsys):
    named = make_plan(load_suite(suite_file, ['metrics.attack_success_transfer.source="vgg5_ann"']))
    assert named.skipped_model_metrics == []
    with pytest.raises(BenchError, match="did you mean 'vgg5_ann'"):
        make_plan(load_suite(suite_file, ['metrics.attack_success_transfer.source="vgg5_anm"']))
    out = tmp_path / "never"
    rc = cli(["run", str(suite_file), "--quiet", "--out", str(out), "--set",
              'metrics.attack_success_transfer.source="vgg5_anm"'])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: unknown model 'vgg5_anm'") and err.count("\n") == 1, err
    assert not out.exists()


def test_the_zoos_models_all_have_a_transfer_source():
    """No shipped suite loses a transfer row: every probed zoo model has a twin (or is one)."""
    plan = make_plan(load_suite("robustness"))
    assert plan.skipped_model_metrics == [] and len(plan.model_metrics_for("vgg5_ann")) == len(plan.model_metrics)


@pytest.mark.slow
def test_a_run_scores_the_rest_and_its_summary_names_each_skip(suite_file: Path, tmp_path: Path, monkeypatch,
                                                               capsys):
    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert cli(["run", str(suite_file), "--out", str(out), "--no-report"]) == 0
    printed = capsys.readouterr().err  # the summary goes to stderr
    rows = pd.read_csv(out / "results.csv")
    assert set(zip(rows["method"].fillna(""), rows["metric"])) == {
        ("sam", "pointing_game"), ("", "attack_zero_gradient")}
    run = json.loads((out / "run.json").read_text())
    assert {(s["method"], s["metric"]): s["reason"] for s in run["skipped"]}[("", "attack_success_transfer")] == REASON
    assert "skipped: 2 (model, method) cells or metrics (all in run.json):" in printed
    assert f"  attack_success_transfer on my_net: {REASON}" in printed.splitlines()
    assert "  ann_gradcam on my_net: 'ann_gradcam' runs on the ANN twin and 'my_net' names none" in printed
