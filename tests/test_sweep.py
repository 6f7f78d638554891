"""Parameter sweeps inside one run (``[methods.X.sweep]``, :mod:`bench.variants`): variant names
and order, the params run.json records, a variant equals the method run with those params set
directly, resume per variant, shard + merge, the report, the explain command, and bad input."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench.pipeline.cells as cells_mod
from bench.cli import main as cli
from bench.commands.explain import _method
from bench.errors import BenchError, ConfigError
from bench.pipeline.run import Shard, merge_runs, run_suite
from bench.report.data import ReportData
from bench.suite import build_suite, load_suite
from bench.variants import base_name, parse_variant, variant_name
from methods.sam import SamParams

REPO = Path(__file__).resolve().parents[1]
MODEL = "vgg5_snn_t8"
SAM = ["sam@layer=conv1,variant=inclusive", "sam@layer=conv1,variant=exclusive",
       "sam@layer=conv3,variant=inclusive", "sam@layer=conv3,variant=exclusive"]


def table(cache: Path | str = "", **methods: dict) -> dict:
    """A tiny suite: one zoo SNN, 8 samples in two batches, SAM swept over two layers and two
    variants (unless ``methods`` replaces the methods), two cheap metrics."""
    return {
        "models": [MODEL],
        "run": {"batch_size": 4, "n_samples": 8, "examples": 2, "cache_dir": str(cache)},
        "data": {"dataset": "shapes", "split": "test"},
        "methods": methods or {"sam": {"gamma": 0.5, "sweep": {"layer": ["conv1", "conv3"],
                                                              "variant": ["inclusive", "exclusive"]}}},
        "metrics": {"pointing_game": {}, "mask_auroc": {}},
        "report": {"n_boot": 50},
    }


# -- expansion (no run) -----------------------------------------------------------------------
def test_variants_are_named_and_ordered_as_written():
    suite = build_suite(table())
    assert list(suite.methods) == SAM   # cartesian product, the first swept key slowest
    assert suite.methods[SAM[1]] == SamParams(gamma=0.5, layer="conv1", variant="exclusive")
    assert suite.variants[SAM[2]] == {"layer": "conv3", "variant": "inclusive"}
    assert all(base_name(m) == "sam" for m in SAM) and base_name("sam") == "sam"
    swapped = build_suite(table(sam={"sweep": {"variant": ["exclusive", "inclusive"], "layer": ["conv3"]}}))
    assert list(swapped.methods) == ["sam@variant=exclusive,layer=conv3", "sam@variant=inclusive,layer=conv3"]


def test_value_formats_and_parse_back():
    name = variant_name("deletion", {"fractions": (0.0, 0.5), "preset": "m4", "n_steps": 4, "flag": True})
    assert name == "deletion@fractions=[0.0,0.5],preset=m4,n_steps=4,flag=true"
    assert parse_variant(name) == ("deletion", {"fractions": [0.0, 0.5], "preset": "m4", "n_steps": 4, "flag": True})
    assert parse_variant("sam") == ("sam", {})
    s = build_suite(table(sam={"sweep": {"gamma": [0.25, 1]}}))
    assert list(s.methods) == ["sam@gamma=0.25", "sam@gamma=1.0"]   # an int given for a float reads as one
    assert [p.gamma for p in s.methods.values()] == [0.25, 1.0]


def test_metric_sweep_and_limits_by_base_name():
    t = table()
    t["metrics"] = {"deletion": {"n_steps": 4, "sweep": {"preset": ["default", "rise2018"]}}}
    t["limits"] = {"deletion": 4}
    s = build_suite(t)
    assert list(s.metrics) == ["deletion@preset=default", "deletion@preset=rise2018"]
    assert s.metrics["deletion@preset=rise2018"].preset == "rise2018"
    assert s.metrics["deletion@preset=rise2018"].n_steps == 4


def test_cli_override_sweeps_and_a_suite_without_sweep_keeps_its_hash():
    s = load_suite("smoke", ['methods.sam.sweep.layer=["conv1", "conv2"]'])
    assert list(s.methods)[:2] == ["sam@layer=conv1", "sam@layer=conv2"] and "sam" not in s.methods
    assert s.plain()["variants"] == {"sam@layer=conv1": {"layer": "conv1"}, "sam@layer=conv2": {"layer": "conv2"}}
    default = load_suite("default")
    assert "variants" not in default.plain() and not default.variants
    published = json.loads((REPO / "results" / "default" / "run.json").read_text())
    assert default.config_hash() == published["config_hash"]


def test_shipped_sam_layers_suite_sweeps_the_four_layers():
    s = load_suite("sam_layers")
    assert list(s.methods) == [f"sam@layer=conv{i}" for i in (1, 2, 3, 4)]
    assert {p.layer for p in s.methods.values()} == {"conv1", "conv2", "conv3", "conv4"}


@pytest.mark.parametrize("sam, match", [
    ({"sweep": "conv1"}, r"methods\.sam\.sweep: expected a non-empty table"),
    ({"sweep": {}}, r"methods\.sam\.sweep: expected a non-empty table"),
    ({"sweep": {"lyer": ["conv1"]}}, r"methods\.sam\.sweep\.lyer: 'sam' has no parameter 'lyer'; did you mean 'layer'"),
    ({"sweep": {"layer": "conv1"}}, r"methods\.sam\.sweep\.layer: expected a list of values, got 'conv1'"),
    ({"sweep": {"layer": []}}, r"methods\.sam\.sweep\.layer: the list of values is empty"),
    ({"sweep": {"layer": ["conv1", "conv1"]}}, r"methods\.sam\.sweep\.layer: a value is listed twice"),
    ({"layer": "conv1", "sweep": {"layer": ["conv2"]}}, r"methods\.sam\.sweep\.layer: 'layer' is also set"),
    ({"sweep": {"gamma": ["big"]}}, r"methods\.sam\.sweep\.gamma\[0\]: expected a number"),
    ({"sweep": {"variant": ["inclusive", "nope"]}}, r"methods\.sam\.sweep\.variant\[1\]: expected one of"),
    ({"sweep": {"layer": ["a/b"]}}, r"methods\.sam\.sweep\.layer: value 'a/b' contains a path separator"),
])
def test_bad_sweeps_name_the_problem(sam, match):
    with pytest.raises(ConfigError, match=match):
        build_suite(table(sam=sam))


def test_bad_sweep_of_a_method_without_params_and_unknown_method():
    with pytest.raises(ConfigError, match=r"methods\.edge\.sweep: 'edge' takes no parameters"):
        build_suite(table(edge={"sweep": {"x": [1]}}))
    with pytest.raises(BenchError, match="unknown method 'sma'"):
        build_suite(table(sma={"sweep": {"layer": ["conv1"]}}))


def test_bad_sweep_from_the_command_line_is_one_error_line(capsys):
    rc = cli(["run", "smoke", "--set", "methods.sam.sweep.layer=[]", "--out", "/nonexistent/never"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["error: methods.sam.sweep.layer: the list of values is empty"]


def test_explain_accepts_a_variant_name():
    def ns(method: str, param: list[str] = (), layer: str | None = None) -> argparse.Namespace:
        return argparse.Namespace(method=method, param=list(param), layer=layer)

    assert _method(ns("sam@layer=conv1,variant=exclusive")) == ("sam", {"variant": "exclusive"}, "conv1")
    assert _method(ns("sam@gamma=0.3", ["variant=official"])) == ("sam", {"gamma": 0.3, "variant": "official"}, None)
    assert _method(ns("sam")) == ("sam", None, None)
    with pytest.raises(BenchError, match="already sets layer"):
        _method(ns("sam@layer=conv1", layer="conv2"))
    with pytest.raises(BenchError, match="already sets gamma"):
        _method(ns("sam@gamma=0.3", ["gamma=0.5"]))


def test_compare_with_a_swept_method_pairs_each_variant():
    """SAM's spec compares it with ann_gradcam; a suite sweeping ann_gradcam pairs SAM with
    each of its variants (the report's paired stability table)."""
    order = ["sam", "ann_gradcam@layer=conv1", "ann_gradcam@layer=conv3"]
    run = {"order": {"methods": order, "metrics": []},
           "versions": {"methods": {m: {} for m in order}, "metrics": {}},
           "roles": {"methods": {"sam": {"compare_with": ["ann_gradcam"]}}, "metrics": {}}}
    empty = pd.DataFrame()
    rd = ReportData(Path("."), empty, run, empty, empty, empty, empty)
    assert rd.pairs() == [("sam", "ann_gradcam@layer=conv1"), ("sam", "ann_gradcam@layer=conv3")]


# -- end to end --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def swept(cache, tmp_path_factory):
    """The sweep suite run once, with its report."""
    return run_suite(build_suite(table(cache)), out=tmp_path_factory.mktemp("swept") / "run", progress=False)


@pytest.mark.slow
def test_results_run_json_and_report_name_the_variants(swept):
    res = pd.read_csv(swept / "results.csv")
    assert sorted(res["method"].unique()) == sorted(SAM)   # results.csv is sorted canonically
    layers = res.groupby("method")["layer"].unique().to_dict()
    assert {m: list(v) for m, v in layers.items()} == {m: [m.split("layer=")[1][:5]] for m in SAM}
    run = json.loads((swept / "run.json").read_text())
    assert run["config"]["methods"][SAM[1]] == {"gamma": 0.5, "layer": "conv1", "time_reduce": "mean",
                                                "variant": "exclusive"}
    assert run["config"]["variants"][SAM[3]] == {"layer": "conv3", "variant": "exclusive"}
    assert run["order"]["methods"] == SAM
    assert run["roles"]["methods"][SAM[0]] == {"attack_gallery": True, "compare_with": ["ann_gradcam"]}
    assert run["versions"]["methods"][SAM[0]]["version"] == run["versions"]["methods"][SAM[3]]["version"]
    assert [(c["model"], c["method"]) for c in run["cells"]] == [(MODEL, m) for m in SAM]
    board = (swept / "report" / "leaderboard.md").read_text()
    assert all(f"| {m} |" in board for m in SAM)
    assert sorted(p.name for p in (swept / "examples" / MODEL).glob("*.npz")) == sorted(f"{m}.npz" for m in SAM)


@pytest.mark.slow
def test_a_variant_equals_the_method_run_with_its_params(swept, tmp_path):
    """sam@layer=conv3,variant=exclusive equals sam with layer and variant set directly, computed
    afresh (its own heatmap cache): same rows, same example maps."""
    direct = run_suite(build_suite(table(tmp_path / "cache", sam={"gamma": 0.5, "layer": "conv3",
                                                                 "variant": "exclusive"})),
                       out=tmp_path / "direct", progress=False, report=False)
    keep = ["sample_id", "target", "pred", "model", "method_model", "layer", "metric", "timestep", "point", "value"]
    a = pd.read_csv(direct / "results.csv")
    b = pd.read_csv(swept / "results.csv")
    a = a[a["method"] == "sam"][keep].reset_index(drop=True)
    b = b[b["method"] == SAM[3]][keep].reset_index(drop=True)
    assert len(a) and a.equals(b)
    za = np.load(direct / "examples" / MODEL / "sam.npz")
    zb = np.load(swept / "examples" / MODEL / f"{SAM[3]}.npz")
    assert np.array_equal(za["maps"], zb["maps"]) and np.array_equal(za["steps"], zb["steps"])


@pytest.mark.slow
def test_resume_skips_finished_variants(swept, cache, tmp_path, monkeypatch):
    out = tmp_path / "resumed"
    real = cells_mod.run_cell
    calls = []

    def crash_on_second(ctx):
        calls.append(ctx.cell.method)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(ctx)

    monkeypatch.setattr(cells_mod, "run_cell", crash_on_second)
    suite = build_suite(table(cache))
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, out=out, progress=False, report=False)
    done = sorted(p.name for p in (out / "cells" / MODEL).glob("sam@*.json"))
    assert done == [f"{SAM[0]}.json"]
    seen = []
    monkeypatch.setattr(cells_mod, "run_cell", lambda ctx: (seen.append(ctx.cell.method), real(ctx))[1])
    run_suite(suite, out=out, progress=False, report=False)
    assert seen == SAM[1:]                                             # the finished variant is skipped
    assert (out / "results.csv").read_bytes() == (swept / "results.csv").read_bytes()


@pytest.mark.slow
def test_shards_of_a_sweep_merge_to_the_unsharded_table(swept, cache, tmp_path):
    suite = build_suite(table(cache))
    dirs = [run_suite(suite, out=tmp_path / f"s{i}", shard=Shard(i, 2), progress=False, report=False)
            for i in (1, 2)]
    merged = merge_runs(dirs, tmp_path / "merged", report=True)
    assert (merged / "results.csv").read_bytes() == (swept / "results.csv").read_bytes()
    assert json.loads((merged / "run.json").read_text())["config"]["variants"] == \
        json.loads((swept / "run.json").read_text())["config"]["variants"]
    assert all(f"| {m} |" in (merged / "report" / "leaderboard.md").read_text() for m in SAM)
