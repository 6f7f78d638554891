"""The runner end to end on the ``smoke`` suite: schema, run.json, report; byte-identical
re-runs; resume after an interruption; shard + merge equals the unsharded run; bad input fails
before any file is written."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pytest

import bench.pipeline.cells as cells_mod
from bench.cli import main as cli
from bench.errors import BenchError
from bench.pipeline.run import Shard, merge_runs, parse_shard, run_suite, shard_batches
from bench.store.results import COLUMNS
from bench.suite import load_suite


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def suite(cache):
    return load_suite("smoke", [f'run.cache_dir="{cache}"'])


@pytest.fixture(scope="module")
def full(suite, tmp_path_factory):
    """The smoke suite run once, with its report."""
    return run_suite(suite, out=tmp_path_factory.mktemp("full") / "run", progress=False)


def test_results_schema_and_content(full, suite):
    df = pd.read_csv(full / "results.csv", keep_default_na=False)
    assert list(df.columns)[:len(COLUMNS)] == list(COLUMNS)
    run = json.loads((full / "run.json").read_text())
    assert set(df["run_id"]) == {run["run_id"]}
    assert set(df["method"]) == set(suite.methods) | {""}            # "" = model-scope rows
    assert set(df["metric"]) == set(suite.metrics)
    assert df["sample_id"].nunique() == suite.run.n_samples
    assert set(df.loc[df["method"] == "ann_gradcam", "method_model"]) == {"vgg5_ann"}
    assert set(df.loc[df["method"] == "sam", "method_model"]) == {"vgg5_snn_t8"}
    sam_steps = df[(df["method"] == "sam") & (df["timestep"] != "")]
    assert set(sam_steps["timestep"].astype(int)) == set(range(8))    # per-time-step rows, T=8
    curve = df[(df["metric"] == "deletion") & (df["point"] != "")]
    assert sorted(set(curve["point"].astype(float))) == [0.0, 0.25, 0.5, 0.75, 1.0]
    # [limits]: deletion scores the first 6 samples only, adversarial_accuracy the first 4
    first = json.loads((full / "run.json").read_text())["sample_ids"]
    for metric, n in suite.limits.items():
        assert set(df.loc[df["metric"] == metric, "sample_id"]) == set(first[:n]), metric


def test_run_json_records_provenance(full, suite):
    run = json.loads((full / "run.json").read_text())
    for key in ("run_id", "config", "config_hash", "versions", "git", "packages", "device", "seed",
                "checkpoints", "dataset", "sample_ids", "timing", "cost", "skipped"):
        assert key in run, key
    assert run["config_hash"] == suite.config_hash()
    assert set(run["versions"]["methods"]) == set(suite.methods)
    assert run["versions"]["metrics"]["deletion"]["higher_is_better"] is False
    assert set(run["versions"]["models"]) == {"vgg5_snn_t8", "vgg5_ann"}
    assert {len(c["sha256"]) for c in run["checkpoints"].values()} == {64}
    assert set(run["checkpoints"]) == {"vgg5_snn_t8", "vgg5_ann"}   # probed and method models
    assert run["dataset"]["fingerprint"] and len(run["sample_ids"]) == suite.run.n_samples
    stages = {(c["method"], c["metric"], c["stage"]) for c in run["cost"]}
    assert ("sam", "", "explain") in stages and ("sam", "deletion", "score") in stages
    assert all(c["forwards"] >= 0 and c["wall_s"] >= 0 for c in run["cost"])
    assert run["timing"]["wall_s"] > 0 and "explain" in run["timing"]["stages_s"]
    # one memory record per cell, in the cells' order: resident memory after it and the peak so far
    mem = run["memory"]
    assert [(m["model"], m["method"]) for m in mem] == [(c["model"], c["method"]) for c in run["cells"]]
    assert all(0 < m["rss_gib"] <= m["peak_rss_gib"] + 1e-3 for m in mem)
    assert [m["peak_rss_gib"] for m in mem] == sorted(m["peak_rss_gib"] for m in mem)  # a running maximum


def test_report_written(full):
    rep = full / "report"
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "report.html"):
        assert (rep / name).is_file(), name
    assert "vgg5_snn_t8" in (rep / "leaderboard.md").read_text()
    assert (full / "examples" / "vgg5_snn_t8" / "sam.npz").is_file()


@pytest.mark.slow
def test_same_config_twice_is_byte_identical(full, suite, tmp_path):
    again = run_suite(suite, out=tmp_path / "again", progress=False, report=False)
    assert (again / "results.csv").read_bytes() == (full / "results.csv").read_bytes()


@pytest.mark.slow
def test_resume_after_interruption(full, suite, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    calls = {"n": 0}
    real = cells_mod.run_cell

    def crash_on_third(ctx):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(ctx)

    monkeypatch.setattr(cells_mod, "run_cell", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out=out, progress=False, report=False)
    assert not (out / "results.csv").exists()
    done = sorted(p.stem for p in (out / "cells" / "vgg5_snn_t8").glob("*.json") if p.stem != "model")
    assert len(done) == 2
    seen = []
    monkeypatch.setattr(cells_mod, "run_cell", lambda ctx: (seen.append(ctx.cell.method), real(ctx))[1])
    run_suite(suite, out=out, progress=False, report=False)
    assert len(seen) == 3 and not set(done) & set(seen)             # finished cells are skipped
    assert (out / "results.csv").read_bytes() == (full / "results.csv").read_bytes()
    # a finished run invoked again: its timing adds the new go to the first instead of replacing it
    first = json.loads((out / "run.json").read_text())["timing"]
    assert "invocations" not in first   # the interrupted go assembled nothing, so recorded none
    run_suite(suite, out=out, progress=False, report=False)
    t = json.loads((out / "run.json").read_text())["timing"]
    assert len(t["invocations"]) == 2 and t["invocations"][0] == first
    assert t["wall_s"] == pytest.approx(first["wall_s"] + t["invocations"][1]["wall_s"], abs=2e-3)
    assert t["stages_s"]["assemble"] == pytest.approx(sum(i["stages_s"]["assemble"] for i in t["invocations"]), abs=2e-3)


@pytest.mark.slow
def test_shards_merge_to_the_unsharded_table(full, suite, tmp_path):
    dirs = [run_suite(suite, out=tmp_path / f"s{i}", shard=Shard(i, 2), progress=False, report=False)
            for i in (1, 2)]
    merged = merge_runs(dirs, tmp_path / "merged", report=False)
    assert (merged / "results.csv").read_bytes() == (full / "results.csv").read_bytes()
    run = json.loads((merged / "run.json").read_text())
    assert run["sample_ids"] == json.loads((full / "run.json").read_text())["sample_ids"]
    with pytest.raises(BenchError, match="cover"):
        merge_runs(dirs[:1], tmp_path / "partial", report=False)


def test_shard_split_is_whole_batches():
    assert shard_batches(10, 3, Shard(1, 2)) == [[0, 1, 2], [6, 7, 8]]
    assert shard_batches(10, 3, Shard(2, 2)) == [[3, 4, 5], [9]]
    for text in ("0/2", "3/2", "1-2", "a/b"):
        with pytest.raises(BenchError, match="shard"):
            parse_shard(text)


def test_bad_input_fails_before_writing(tmp_path, capsys):
    out = tmp_path / "never"
    for args in (["--set", 'models=["vgg5_snn_t9"]'], ["--shard", "3/2"], ["--set", "methods.nope={}"],
                 ["--set", "run.seed=x"], ["--limit", "-1"], ["--set", "data.params.image_size=64"],
                 ["--set", 'methods.sam.layer="conv9"']):               # the plan resolves layers
        assert cli(["run", "smoke", "--out", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert not out.exists()


def test_refuses_to_mix_runs_in_one_directory(full, suite, tmp_path):
    out = tmp_path / "mixed"
    shutil.copytree(full, out)
    other = load_suite("smoke", [f'run.cache_dir="{suite.run.cache_dir}"', "run.seed=1"])
    with pytest.raises(BenchError, match="--force"):
        run_suite(other, out=out, progress=False, report=False)


def test_publish_one_run_compressed(full, tmp_path):
    import gzip

    out = merge_runs([full], tmp_path / "published", report=False, compress=True)
    assert gzip.decompress((out / "results.csv.gz").read_bytes()) == (full / "results.csv").read_bytes()
    assert (out / "run.json").is_file() and (out / "examples" / "inputs.npz").is_file()
    assert not (out / "cells").exists()
    assert json.loads((out / "run.json").read_text())["timing"] == json.loads((full / "run.json").read_text())["timing"]


def shard_data(suite):
    """The plan and the (unsharded) batches the runner scores."""
    from bench.pipeline.plan import make_plan
    from bench.pipeline.runtime import Clock, Progress
    from bench.pipeline.shard import load_shard

    plan = make_plan(suite)
    return plan, load_shard(plan, Shard(), Clock(), Progress(False))


def test_stability_per_time_step_equals_a_direct_computation(full, suite):
    """The runner's per-step stability rows compare clean step s with attacked step s: recompute
    them outside the runner (attack, SAM on both inputs, Spearman per step) for batch 0."""
    import numpy as np
    import torch

    from bench.attacks.core import AttackSpec, attack
    from bench.explain import explain_batch
    from bench.models import get_card, load_model
    from metrics._ssim import spearman

    plan, data = shard_data(suite)
    b = data.batches[0]                                     # 4 samples, inside the limit of 6
    model = load_model("vgg5_snn_t8", cache_dir=suite.run.cache_dir, progress=False)
    card, ds, params = get_card("vgg5_snn_t8"), plan.dataset, suite.metrics["stability_spearman"]
    spec = AttackSpec(kind=params.attack, steps=params.steps, step_frac=params.step_frac,
                      random_start=params.random_start, eot=1)   # direct encoding: no EOT
    (eps,) = params.epsilons
    x_adv = attack(model, b.x, b.y, b.sample_id, eps, spec, tuple(ds.mean), tuple(ds.std), suite.run.seed)
    expl = [explain_batch("sam", suite.methods["sam"], model, card, dataclasses.replace(b, x=x), target=b.y,
                          seed=suite.run.seed, post=suite.postprocess) for x in (b.x, x_adv)]
    df = pd.read_csv(full / "results.csv")
    rows = df[(df["metric"] == "stability_spearman") & (df["method"] == "sam") & df["point"].notna()]
    for s in range(8):
        want = spearman(expl[0].steps[s], expl[1].steps[s]).numpy()
        got = rows[rows["timestep"] == s].set_index("sample_id").loc[b.sample_id.tolist(), "value"]
        assert np.allclose(got.to_numpy(), want, atol=1e-6, equal_nan=True), s
    agg = rows[rows["timestep"].isna()].set_index("sample_id").loc[b.sample_id.tolist(), "value"]
    assert np.allclose(agg.to_numpy(), spearman(expl[0].maps, expl[1].maps).numpy(), atol=1e-6)
    # Grad-CAM on the ANN twin has no time steps: time-aggregated rows only
    assert df.loc[(df["metric"] == "stability_spearman") & (df["method"] == "ann_gradcam"), "timestep"].isna().all()
    assert torch.equal(b.x, data.batches[0].x)               # the attack did not modify the batch


def test_attacked_examples_are_saved_for_the_gallery(full, suite):
    """sam.npz holds the attacked maps of the example samples; attacked.npz (per method model)
    the attacked inputs, inside the budget, with that model's predictions."""
    import numpy as np

    from bench.store.rundir import load_npz

    ex = full / "examples"
    inputs, sam = load_npz(ex / "inputs.npz"), load_npz(ex / "vgg5_snn_t8" / "sam.npz")
    k, eps = suite.run.examples, suite.metrics["stability_spearman"].epsilons
    assert sam["adv_maps"].shape == (len(eps), k, 32, 32)
    assert np.allclose(sam["adv_points"], eps)
    for model in ("vgg5_snn_t8", "vgg5_ann"):                # ann_gradcam's maps come from the twin
        att = load_npz(ex / model / "attacked.npz")
        assert att["image"].shape == (len(eps), k, 3, 32, 32) and att["pred"].shape == (len(eps), k)
        assert np.array_equal(att["sample_id"], inputs["sample_id"])
        diff = np.abs(att["image"].astype(np.float32) - inputs["image"].astype(np.float32))
        assert diff.max() <= eps[0] + 2e-3 and diff.max() > eps[0] / 2   # float16 storage


@pytest.mark.slow
def test_another_evaluation_seed_uses_the_same_trained_models(suite, tmp_path):
    """run.seed varies encodings and attacks, not the models: the zoo (model_seed 0) serves.
    (The same run checks the gallery when the attacked metric's limit leaves out an example
    sample: the metric is run on the example samples for the gallery, without rows.)"""
    import numpy as np

    from bench.store.rundir import load_npz

    other = load_suite("smoke", [f'run.cache_dir="{suite.run.cache_dir}"', "run.seed=3",
                                 "limits.stability_spearman=1"])
    out = run_suite(other, out=tmp_path / "seed3", progress=False, report=False)
    run = json.loads((out / "run.json").read_text())
    assert {c["source"] for c in run["checkpoints"].values()} == {"zoo"}
    df = pd.read_csv(out / "results.csv")
    assert df.loc[df["metric"] == "stability_spearman", "sample_id"].nunique() == 1
    sam = load_npz(out / "examples" / "vgg5_snn_t8" / "sam.npz")
    assert sam["adv_maps"].shape == (1, other.run.examples, 32, 32) and np.isfinite(sam["adv_maps"]).all()


def test_model_randomization_stages_equal_a_direct_computation(full, suite):
    """Each cascading stage is explained afresh (the cascade mutates one copy in place, so a
    cache keyed on the module would repeat stage 1): the runner's rows equal the metric run
    with a plain explainer, for Grad-CAM on the ANN twin (which the top layers do change)."""
    import numpy as np

    from bench.explain import explain_batch
    from bench.models import get_card, load_model
    from bench.pipeline.services import direct_input
    from metrics.sanity import model_randomization

    b = shard_data(suite)[1].batches[0]                     # 4 samples = the metric's limit
    ann, card = load_model("vgg5_ann", cache_dir=suite.run.cache_dir, progress=False), get_card("vgg5_ann")
    explain = lambda model, x: explain_batch("ann_gradcam", suite.methods["ann_gradcam"], model, card,
                                             dataclasses.replace(b, x=x), target=b.y, seed=suite.run.seed,
                                             post=suite.postprocess).maps
    inp = direct_input(explain(ann, b.x), b, method_model=ann, explain=explain, seed=suite.run.seed)
    want = model_randomization(inp, suite.metrics["model_randomization"]).curve.numpy()
    df = pd.read_csv(full / "results.csv")
    rows = df[(df["metric"] == "model_randomization") & (df["method"] == "ann_gradcam") & df["point"].notna()]
    got = rows.pivot(index="sample_id", columns="point", values="value").loc[b.sample_id.tolist()].to_numpy()
    assert got.shape == (4, 2) and np.allclose(got, want, atol=1e-6, equal_nan=True)
    assert not np.allclose(got[:, 0], got[:, 1])            # the two stages differ


def test_declared_source_commit_for_copied_trees(monkeypatch):
    """A copied tree (remote GPU machine) records the commit its sender declares, marked as
    declared, and keeps what the local .git says beside it."""
    from bench.provenance import SOURCE_COMMIT_ENV, git_state

    local = git_state()
    monkeypatch.setenv(SOURCE_COMMIT_ENV, "abc123")
    declared = git_state()
    assert declared == {"commit": "abc123", "dirty": None, "declared": True,
                        "checkout_commit": local["commit"]}
    monkeypatch.setenv(SOURCE_COMMIT_ENV, "")
    assert git_state() == local
