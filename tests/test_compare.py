"""Submitting to the leaderboard: ``snnxai run --only/--reference`` and ``snnxai compare``.

A small committed-style reference run (one SNN of the zoo, the trivial baselines and SAM, 8
shapes samples, a declared suite version) is built once; two throw-away methods registered in
this test are submitted against it: ``oracle`` (the ground-truth mask, blurred) must rank first
on the energy pointing game, ``inverse`` (one minus it) last, each significantly apart from
every reference entry. Each incompatibility (dataset, seed, samples, a shared method param,
the suite version) is refused with exit 2, naming it, before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import bench.pipeline.cells as cells_mod
import bench.pipeline.run as run_mod
from bench.cli import main as cli
from bench.compare import MODELS_FAMILY, compare_runs, first_difference
from bench.errors import BenchError, ConfigError
from bench.pipeline.plan import CellFilter, make_plan
from bench.pipeline.run import run_suite
from bench.registry import METHODS
from bench.suite import load_suite

N = 8   # samples: the exact Wilcoxon test separates 8 same-signed differences (p = 1/128)
SUITE = f"""
version = "1"
models = ["vgg5_snn_t8"]

[run]
name = "tiny"
batch_size = 4
n_samples = {N}
examples = 0

[data]
dataset = "shapes"
split = "test"

[methods.sam]
[methods.center]
[methods.random]

[metrics.pointing_game]
[metrics.energy_pointing_game]
[metrics.sparseness]
[metrics.attack_zero_gradient]
eot = 1

[report]
n_boot = 200

[limits]
attack_zero_gradient = 4
"""
NEW = ("oracle", "inverse")


def blurred_masks(sample_id: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]``: each sample's ground-truth mask, 3x3 box-blurred (read from the dataset
    by sample id, the index of a shapes sample)."""
    from bench.data import get_dataset

    ds = get_dataset("shapes", "test", {})
    masks = torch.stack([ds[int(i)].mask for i in sample_id]).float().to(x.device)
    return F.avg_pool2d(masks[:, None], 3, stride=1, padding=1)[:, 0]


def oracle(inp, params: None) -> torch.Tensor:
    return blurred_masks(inp.sample_id, inp.x)


def inverse(inp, params: None) -> torch.Tensor:
    return 1.0 - blurred_masks(inp.sample_id, inp.x)


META = dict(summary="test only", model_kind="any", temporal=False, needs_grad=False, needs_label=False,
            version="1", reference="test only")


@pytest.fixture(scope="module")
def new_methods():
    with METHODS.temporary("oracle", oracle, **META), METHODS.temporary("inverse", inverse, **META):
        yield NEW
    assert "oracle" not in METHODS


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "tiny.toml"
    path.write_text(SUITE)
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def tiny(suite_file, cache, *overrides: str):
    return load_suite(suite_file, [f'run.cache_dir="{cache}"', *overrides])


@pytest.fixture(scope="module")
def reference(suite_file, cache, tmp_path_factory):
    """The committed-style reference: the whole tiny suite, published like results/ is."""
    out = run_suite(tiny(suite_file, cache), out=tmp_path_factory.mktemp("ref") / "run", progress=False,
                    report=False)
    return run_mod.merge_runs([out], tmp_path_factory.mktemp("published") / "ref", report=False, compress=True)


@pytest.fixture(scope="module")
def submission(new_methods, suite_file, cache, reference, tmp_path_factory):
    """The new methods' cells only, against the reference (``center`` is named too: the
    reference holds it, so it is not recomputed). Records which cells the runner computed."""
    computed = []
    real = cells_mod.run_cell

    def record(ctx):
        computed.append((ctx.cell.model, ctx.cell.method))
        return real(ctx)

    cells_mod.run_cell = record
    try:
        out = run_suite(tiny(suite_file, cache), out=tmp_path_factory.mktemp("sub") / "run", progress=False,
                        report=False, only=CellFilter(methods=(*NEW, "center")), reference=reference)
    finally:
        cells_mod.run_cell = real
    return out, computed


# -- suite version ------------------------------------------------------------------------------
def test_suite_version_is_recorded_and_an_undeclared_one_is_not_hashed(suite_file, tmp_path):
    smoke = load_suite("smoke")
    assert smoke.version is None and "version" not in smoke.plain()    # old suites keep their hash
    s = load_suite(suite_file)
    assert s.version == "1" and s.plain()["version"] == "1"
    assert load_suite(suite_file, ['version="2"']).config_hash() != s.config_hash()
    with pytest.raises(ConfigError, match="version"):
        load_suite(suite_file, ["version=2"])                          # a number, not a string


# -- --only -------------------------------------------------------------------------------------
def test_cell_filter_selects_cells_and_model_scope_only_by_model():
    f = CellFilter.parse(["method=sam", "model=vgg5_snn_t8", "method=sam"])
    assert f == CellFilter(methods=("sam",), models=("vgg5_snn_t8",))
    assert f.selects("vgg5_snn_t8", "sam") and not f.selects("vgg5_ann", "sam")
    assert not f.selects("vgg5_snn_t8", "")                            # model scope: no method
    by_model = CellFilter(models=("vgg5_snn_t8",))
    assert by_model.selects("vgg5_snn_t8", "") and by_model.selects("vgg5_snn_t8", "center")
    assert not CellFilter(methods=("sam",)).selects("vgg5_snn_t8", "")
    for bad in ("sam", "metric=x", "method="):
        with pytest.raises(BenchError, match="--only"):
            CellFilter.parse([bad])


def test_unknown_names_fail_with_did_you_mean(suite_file, cache):
    with pytest.raises(BenchError, match="did you mean 'sam'"):
        CellFilter(methods=("sma",)).include(tiny(suite_file, cache))
    with pytest.raises(BenchError, match="did you mean"):
        CellFilter(models=("vgg5_snn_t9",)).include(tiny(suite_file, cache))


def test_filtered_plan_keeps_the_suites_run_id(new_methods, suite_file, cache):
    """--only method=NAME hashes like the suite with NAME added by --set, without a filter."""
    only = CellFilter(methods=("oracle",))
    filtered = make_plan(only.include(tiny(suite_file, cache)), only)
    whole = make_plan(tiny(suite_file, cache, "methods.oracle={}"))
    assert filtered.run_id == whole.run_id
    assert [(c.model, c.method) for c in filtered.cells] == [("vgg5_snn_t8", "oracle")]
    assert len(whole.cells) == 4 + 1                                   # 4 methods + model scope
    models = CellFilter(models=("vgg5_snn_t8",))
    assert {c.method for c in make_plan(tiny(suite_file, cache), models).cells} == {
        "sam", "center", "random", ""}


def test_submission_computes_only_the_new_cells(submission, reference):
    out, computed = submission
    assert computed == [("vgg5_snn_t8", "oracle"), ("vgg5_snn_t8", "inverse")]   # center: in the reference
    assert sorted(p.name for p in (out / "cells" / "vgg5_snn_t8").iterdir()) == [
        "inverse.csv", "inverse.json", "model.json", "oracle.csv", "oracle.json"]
    run = json.loads((out / "run.json").read_text())
    assert run["only"] == {"methods": ["oracle", "inverse", "center"], "models": []}
    assert run["reference"]["run_id"] == json.loads((reference / "run.json").read_text())["run_id"]
    assert run["reference"]["cells_not_recomputed"] == [
        {"model": "vgg5_snn_t8", "method": "center", "method_model": "vgg5_snn_t8"}]
    assert run["suite_version"] == "1"
    df = pd.read_csv(out / "results.csv")
    assert set(df["method"]) == set(NEW) and df["sample_id"].nunique() == N


def test_nothing_to_compute_when_the_reference_holds_every_cell(suite_file, cache, reference, tmp_path):
    with pytest.raises(BenchError, match="already in reference"):
        run_suite(tiny(suite_file, cache), out=tmp_path / "x", progress=False, report=False,
                  only=CellFilter(methods=("center",)), reference=reference)
    assert not (tmp_path / "x").exists()


# -- compare ------------------------------------------------------------------------------------
def test_compare_places_the_new_methods_where_their_scores_say(submission, reference, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli(["compare", str(submission[0]), "--against", str(reference), "--out", str(out)]) == 0
    p = pd.read_csv(out / "placement.csv", keep_default_na=False).set_index(["metric", "method"])
    refs = {"sam", "center", "random"}
    best, worst = p.loc[("energy_pointing_game", "oracle")], p.loc[("energy_pointing_game", "inverse")]
    assert best["rank"] == 1 and best["n_entries"] == 5 and worst["rank"] == 5
    assert set(best["better_than"].split(";")) == refs | {"inverse"} and best["worse_than"] == ""
    assert set(worst["worse_than"].split(";")) == refs | {"oracle"} and worst["better_than"] == ""
    assert p.loc[("pointing_game", "oracle"), "mean"] == 1.0           # the blurred mask peaks inside it
    assert p.loc[("pointing_game", "oracle"), "rank"] == 1
    md = (out / "compare.md").read_text()
    assert "| oracle (new) |" in md and "| inverse (new) |" in md and "no declared" not in md
    board = [ln for ln in md.splitlines() if ln.startswith("| ") and "(new)" in ln and "[" in ln]
    assert board[0].startswith("| oracle (new)") and board[-1].startswith("| inverse (new)")
    assert "<td class=\"name\">oracle (new)</td>" in (out / "compare.html").read_text()


def test_reference_entries_keep_their_committed_statistics(submission, reference):
    """A reference cell's CI is seeded by its own key: merging new cells leaves it unchanged."""
    from bench import stats
    from bench.report.data import load_report_data

    cmp = compare_runs(submission[0], reference)
    alone = load_report_data(reference).summary
    keys = ["model", "method", "metric"]
    mine = cmp.summary[cmp.summary["method"].isin({"sam", "center", "random"})].set_index(keys)
    theirs = stats.scalar_rows(alone)
    theirs = theirs[theirs["method"].isin({"sam", "center", "random"})].set_index(keys)
    assert len(mine) == 9
    pd.testing.assert_frame_equal(mine[["mean", "ci_lo", "ci_hi"]], theirs.loc[mine.index, ["mean", "ci_lo", "ci_hi"]])


def test_a_new_model_is_placed_among_the_models(suite_file, cache, reference, tmp_path):
    """--only model=NAME adds the model: its cells and model-scope metrics; compare ranks it
    among the reference's models on the model-scope metrics."""
    out = run_suite(tiny(suite_file, cache), out=tmp_path / "ann", progress=False, report=False,
                    only=CellFilter(models=("vgg5_ann",)), reference=reference)
    run = json.loads((out / "run.json").read_text())
    assert {(c["model"], c["method"]) for c in run["cells"]} == {("vgg5_ann", m) for m in ("center", "random", "")}
    cmp = compare_runs(out, reference)
    assert (MODELS_FAMILY, "vgg5_ann") in cmp.new
    row = cmp.placement[(cmp.placement["model"] == MODELS_FAMILY)].iloc[0]
    assert row["metric"] == "attack_zero_gradient" and row["n_entries"] == 2


# -- refusals -----------------------------------------------------------------------------------
CHANGES = {  # what changed -> (--set override for the run, run.json edit for compare, expected words)
    "dataset": ('data.params.texture="low"', lambda r: r["dataset"].update(fingerprint="0" * 12),
                "dataset fingerprint"),
    "seed": ("run.seed=1", lambda r: r["config"]["run"].update(seed=1), "seed"),
    "samples": (f"run.n_samples={N + 4}", lambda r: r["sample_ids"].append(10_000), "sample ids"),
    "method param": ("methods.center.sigma=0.3", lambda r: r["config"]["methods"]["center"].update(sigma=0.3),
                     "method 'center' params"),
    "suite version": ('version="2"', lambda r: r.update(suite_version="2"), "suite version"),
}


@pytest.mark.parametrize("change", [pytest.param(c, marks=pytest.mark.slow) if c == "dataset" else c
                                    for c in CHANGES])   # "dataset" generates another split (~4 s)
def test_run_against_an_incompatible_reference_is_refused(change, new_methods, suite_file, cache, reference,
                                                          tmp_path, capsys):
    out = tmp_path / "never"
    args = ["run", str(suite_file), "--quiet", "--out", str(out), "--only", "method=oracle", "--reference", str(reference),
            "--set", f'run.cache_dir="{cache}"', "--set", CHANGES[change][0]]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot compare this run") and err.count("\n") == 1, err
    assert CHANGES[change][2] in err, err
    assert not out.exists()


@pytest.mark.parametrize("change", [*CHANGES, "no shared samples"])
def test_compare_refuses_incompatible_runs(change, submission, reference, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(submission[0], run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    if change == "no shared samples":
        run["sample_ids"], words = [], "share no samples"
    else:
        CHANGES[change][1](run)
        words = CHANGES[change][2]
    (run_dir / "run.json").write_text(json.dumps(run))
    assert cli(["compare", str(run_dir), "--against", str(reference), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot compare") and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "cmp").exists()


def test_identical_runs_have_no_difference(reference):
    run = json.loads((reference / "run.json").read_text())
    assert first_difference(run, run) is None


# -- issue 28: a reference whose results cannot be checked is named on every output ----------
def test_a_reference_without_integrity_is_named_unchecked_everywhere(submission, reference, tmp_path, capsys):
    import shutil

    ref = tmp_path / "ref"
    shutil.copytree(reference, ref, ignore=shutil.ignore_patterns("cells", "examples", "report"))
    run = json.loads((ref / "run.json").read_text())
    del run["integrity"]                               # what a hand-edited reference looks like
    (ref / "run.json").write_text(json.dumps(run))
    out = tmp_path / "cmp"
    assert cli(["compare", str(submission[0]), "--against", str(ref), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {ref} has no integrity record" in err
    assert f"**Unchecked:** {ref} has no integrity record" in (out / "compare.md").read_text()
    assert "Unchecked:</b>" in (out / "compare.html").read_text()
    p = pd.read_csv(out / "placement.csv", keep_default_na=False)
    assert (p["unchecked"].str.contains("no integrity record")).all()
    # the checked reference: no such line anywhere
    out2 = tmp_path / "cmp2"
    assert cli(["compare", str(submission[0]), "--against", str(reference), "--out", str(out2)]) == 0
    assert "Unchecked" not in (out2 / "compare.md").read_text()
    assert (pd.read_csv(out2 / "placement.csv", keep_default_na=False)["unchecked"] == "").all()


def test_committed_references_carry_integrity():
    root = Path(__file__).parent.parent / "results"
    for p in [root / "leaderboard" / "run.json", root / "default" / "run.json"]:
        assert isinstance(json.loads(p.read_text()).get("integrity"), dict), p


def test_dry_run_honours_the_reference(suite_file, cache, reference, tmp_path, capsys):
    base = ["run", str(suite_file), "--set", f'run.cache_dir="{cache}"', "--dry-run"]
    assert cli([*base, "--reference", str(tmp_path / "nothere")]) == 2
    assert "not a finished run directory" in capsys.readouterr().err
    assert cli([*base, "--only", "method=center", "--reference", str(reference)]) == 2
    assert "already in reference" in capsys.readouterr().err
    assert cli([*base, "--only", "method=center", "--reference", str(reference), "--set", 'version="2"']) == 2
    assert "suite_version" in capsys.readouterr().err     # the real reason, not "nothing to compute"
    assert cli([*base, "--set", "run.seed=5", "--only", "method=sparseness_baseline_x", "--reference",
                str(reference)]) == 2                        # an unknown method: did you mean
    capsys.readouterr()
    assert cli([*base, "--only", "model=vgg5_ann", "--reference", str(reference)]) == 0
    out = capsys.readouterr().out
    assert "taken from reference" in out and not (tmp_path / "x").exists()
