"""The fault catalogue: bad input a careless user gives every command. Each case must end in
one line ``error: ...`` on stderr, exit status 2, no traceback, and no file written or changed
(the whole workspace is compared before and after). In-process calls of the CLI, so the
catalogue stays fast; none of these cases may start training or a run."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_report import run_json, synthetic_rows

from bench.cli import main as cli
from bench.store.results import write_results

# -- the catalogue ----------------------------------------------------------------------------
# Tokens in the argv: W = the workspace, OUT = a fresh folder in it (never created by a case),
# FILE = a plain file, RUN = a finished (hand-built) run directory; see the `workspace` fixture.
RUN = ["run", "smoke", "--out", "OUT", "--quiet", "--no-report"]
SET = [*RUN, "--set"]
RUN_CASES = [
    ["run", "smok", "--out", "OUT"],                              # unknown suite (did you mean)
    ["run", "W/nothere.toml", "--out", "OUT"],                     # missing suite file
    ["run", "W/latin1.toml", "--out", "OUT"],                      # not UTF-8
    ["run", "W/syntax.toml", "--out", "OUT"],                      # not TOML
    ["run", "W/unknown_table.toml", "--out", "OUT"],
    ["run", "W/no_models.toml", "--out", "OUT"],
    [*SET, "run.seed"], [*SET, "=3"], [*SET, "run.seed=x"], [*SET, "run.seed.x=1"], [*SET, "run=3"],
    [*SET, "data=3"], [*SET, "run.name="], [*SET, "run.name=-x"], [*SET, 'run.name="a/b"'],
    [*SET, "run.batch_size=0"], [*SET, "run.n_samples=-1"], [*SET, "run.device=tpu"],
    [*SET, "run.target=foo"], [*SET, "run.examples=-1"], [*SET, "run.model_seed=-1"], [*SET, "run.bogus=1"],
    [*SET, 'models=["vgg5_snn_t9"]'], [*SET, "models=[]"], [*SET, 'models=["vgg5_snn_t8", "vgg5_snn_t8"]'],
    [*SET, "models=3"],
    [*SET, "methods.nope={}"], [*SET, "metrics.nope={}"], [*SET, "methods.sam.gamma=-1"],
    [*SET, 'methods.sam.layer="conv9"'], [*SET, "methods.sam.bogus=1"], [*SET, 'methods.sam.variant="x"'],
    [*SET, "metrics.deletion.n_steps=x"], [*SET, "methods=3"],
    [*SET, "data.dataset=nope"], [*SET, "data.dataset=cifar10"], [*SET, "data.dataset=tinyimagenet"],
    [*SET, 'data.dataset=imagefolder'], [*SET, "data.params.image_size=64"],
    [*SET, 'data.params.texture="loud"'], [*SET, "data.params.bogus=1"], [*SET, "data.split=nope"],
    [*SET, 'data.train_params={texture="none"}'],
    [*SET, 'data.params.texture="high"'],                         # would train: needs --train-missing
    [*SET, "limits.nope=3"], [*SET, "limits.deletion=0"], [*SET, "report.n_boot=1"], [*SET, "report.ci=2"],
    [*SET, "postprocess.bogus=1"], [*SET, "nothing.x=1"], [*SET, 'version=""'],
    [*RUN, "--limit", "0"], [*RUN, "--limit", "-1"], [*RUN, "--shard", "3/2"], [*RUN, "--shard", "x"],
    [*RUN, "--shard", "0/2"], [*RUN, "--limit", "4", "--shard", "2/2"],   # a shard with no samples
    [*RUN, "--only", "method"], [*RUN, "--only", "method=nope"], [*RUN, "--only", "model=vgg5_snn_t9"],
    ["run", "smoke", "--out", "FILE"], ["run", "smoke", "--out", "FILE/sub"],
    [*RUN, "--reference", "W/nothere"],
]
LS_CASES = [
    ["ls", "methods", "--where", "nokey=1"], ["ls", "methods", "--where", "oops"],
    ["ls", "metrics", "--where", "nokey=1"], ["ls", "models", "--where", "kinds=snn"],
    ["ls", "datasets", "--where", "x=1"], ["ls", "methods", "--where", "=1"],
]
TRAIN_CASES = [
    ["train"], ["train", "nope"], ["train", "vgg5_ann", "--device", "tpu"],
    ["train", "vgg5_ann", "--device", "cudaX"], ["train", "vgg5_ann", "--threads", "0"],
    ["train", "vgg5_ann", "--threads", "-3"], ["train", "vgg5_ann", "--seed", "-1"],
    ["train", "vgg5_ann", "--epochs", "0"], ["train", "--zoo", "vgg5_nope"], ["train", "--zoo", "--epochs", "3"],
    ["train", "vgg5_ann", "--recipe-param", "lr=0"], ["train", "vgg5_ann", "--recipe-param", "bogus=1"],
    ["train", "vgg5_ann", "--cache-dir", "FILE"], ["train", "vgg5_ann", "--data", "nope"],
    ["train", "vgg5_ann", "--data-param", "bogus=1"],
]
PERF_CASES = [
    ["perf", "--threads", "0"], ["perf", "--device", "tpu"], ["perf", "--batch", "0"],
    ["perf", "--json", "FILE/x.json"], ["perf", "--json", "W/out.txt"], ["perf", "--device", "cuda:x"],
]
FIG = ["--out", "OUT/fig.png"]
EXPLAIN_CASES = [
    ["explain", "--model", "nope", "--sample", "0", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--out", "OUT/fig.xyz"],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--out", "OUT/fig"],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--out", "FILE/fig.png"],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--out", "W"],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--method", "nope", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--every", "0", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "-1", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "99999", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--image", "W/nothere.png", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--image", "W/corrupt.png", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--param", "bogus=1", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--layer", "conv9", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--method", "sam@layer=conv1", "--layer", "conv2", *FIG],
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--data-param", "bogus=1", *FIG],
]
REPORT_CASES = [
    ["report", "W/nothere"], ["report", "W"], ["report", "RUN", "--out", "FILE"],
    ["report", "W/run_json_garbage"], ["report", "W/run_json_cut"], ["report", "W/run_json_list"],
    ["report", "W/run_json_empty"], ["report", "W/results_binary"], ["report", "W/results_empty"],
    ["report", "W/results_missing"], ["report", "W/results_gz_cut"], ["report", "W/results_header_only"],
]
MERGE_COMPARE_CASES = [
    ["merge", "W/nothere", "--out", "OUT"], ["merge", "RUN", "--out", "FILE"],
    ["merge", "W/manifest_only", "--out", "W/manifest_only"], ["merge", "W/manifest_garbage", "--out", "OUT"],
    ["compare", "W/nothere", "--against", "RUN"], ["compare", "RUN", "--against", "W/nothere"],
    ["compare", "RUN", "--against", "RUN", "--out", "FILE"],
    ["repro", "kim2021", "--limit", "0"], ["repro", "kim2021", "--limit", "-1"],
]
# issue 28: each case of the probe that was a traceback, a silent result or a partial output
ISSUE28_CASES = [
    [*RUN, "--adapter", "plain"],                                   # --adapter without --model
    ["explain", "--model", "vgg5_snn_t8", "--sample", "0", "--adapter", "plain", *FIG],
    [*RUN, "--executor", "ray", "--address", "127.0.0.1:notaport"],
    [*RUN, "--executor", "ray", "--address", ""],
    [*RUN, "--executor", "ray", "--address", "127.0.0.1:1"],          # nothing listens: no endless retry
    [*RUN, "--executor", "ray", "--address", "127.0.0.1:99999"],
    ["compare", "RUN", "--against", "W/run_json_nodataset"], ["compare", "W/run_json_nodataset", "--against", "RUN"],
    ["compare", "RUN", "--against", "W/run_json_list"],
    [*RUN, "--reference", "W/run_json_nodataset"], [*RUN, "--reference", "W/run_json_list"],
    [*RUN, "--dry-run", "--reference", "W/nothere"], [*RUN, "--dry-run", "--reference", "W/run_json_nodataset"],
    [*RUN, "--dry-run", "--reference", "RUN"],                        # incomparable: refused like the run
    ["repro", "kim2021", "--only", "nosuch", "--pages-only", "--out", "OUT"],
    ["repro", "kim2021", "--only", "layers", "--only", "nosuch", "--out", "OUT"],
    ["repro", "kim2021", "--results", "FILE", "--pages-only", "--out", "OUT"],
    ["repro", "kim2021", "--results", "FILE", "--out", "OUT"],
    ["repro", "kim2021", "--results", "W/nothere", "--pages-only", "--out", "OUT"],
    ["repro", "kim2021", "--pages-only", "--results", "W/repro_gz_damaged", "--out", "OUT"],
    ["merge", "W/shard_run_json_cut", "--out", "OUT"],              # nothing written before the cut file is found
    ["run", "smoke", "--out", "W/dangling", "--quiet"],                # a dangling symlink
    ["report", "RUN", "--out", "W/dangling"],
    [*RUN, "--checkpoint", "W/nothere.pt"], [*RUN, "--checkpoint", "FILE"],   # refused before the manifest
]
CASES = RUN_CASES + ISSUE28_CASES + LS_CASES + TRAIN_CASES + PERF_CASES + EXPLAIN_CASES + REPORT_CASES + MERGE_COMPARE_CASES


def _write_run(d: Path) -> Path:
    d.mkdir(parents=True)
    write_results(synthetic_rows(), d / "results.csv")
    (d / "run.json").write_text(json.dumps(run_json()))
    return d


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every file the cases name: suite files, damaged run directories, a plain file."""
    w = tmp_path_factory.mktemp("faults")
    (w / "FILE").write_text("a plain file\n")
    (w / "latin1.toml").write_bytes('models = ["vgg5_snn_t8"]  # caf\xe9\n'.encode("latin-1"))
    (w / "syntax.toml").write_text("[run\nseed = 0\n")
    (w / "unknown_table.toml").write_text('models = ["vgg5_snn_t8"]\n[runn]\nseed = 0\n')
    (w / "no_models.toml").write_text("models = []\n[methods.sam]\n[metrics.sparseness]\n")
    (w / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    _write_run(w / "RUN")
    damage = {"run_json_garbage": ("run.json", b"\x00\xff not json"), "run_json_cut": ("run.json", None),
              "run_json_list": ("run.json", b"[]"), "run_json_empty": ("run.json", b"{}"),
              "results_binary": ("results.csv", b"\x00\x01\x02\xff" * 50), "results_empty": ("results.csv", b""),
              "results_header_only": ("results.csv", b"run_id,dataset\n")}
    for name, (file, data) in damage.items():
        d = _write_run(w / name)
        if data is None:  # cut mid-way, as a full disk or a kill would leave it
            data = (d / file).read_bytes()[:40]
        (d / file).write_bytes(data)
    (_write_run(w / "results_missing") / "results.csv").unlink()
    gz = _write_run(w / "results_gz_cut")
    blob = gzip.compress((gz / "results.csv").read_bytes())
    (gz / "results.csv.gz").write_bytes(blob[: len(blob) // 2])
    (gz / "results.csv").unlink()
    nod = _write_run(w / "run_json_nodataset")
    (nod / "run.json").write_text(json.dumps({k: v for k, v in run_json().items() if k != "dataset"}))
    shard = _write_run(w / "shard_run_json_cut")
    (shard / "manifest.json").write_text(json.dumps(
        {"run_id": "x", "shard": {"index": 1, "count": 1}, "cells": [], "models": [], "positions": [],
         "sample_ids": [], "skipped_cells": [], "skipped_metrics": [], "config": {"run": {"examples": 0}}}))
    (shard / "run.json").write_bytes((shard / "run.json").read_bytes()[:40])
    (shard / "results.csv").unlink()
    rg = w / "repro_gz_damaged" / "layers"
    _write_run(rg)
    blob = (rg / "results.csv").read_bytes()
    (rg / "results.csv.gz").write_bytes(gzip.compress(blob.replace(b"0.", b"1.", 1)))  # valid gzip, one digit
    (rg / "results.csv").unlink()
    run = json.loads((rg / "run.json").read_text())   # a record of the original bytes: the edit is caught
    from bench.store import bytes_digest
    from bench.store.results import count_rows
    run["integrity"] = {"format": 1, "results": {"file": "results.csv.gz", "rows": count_rows(blob),
                                                 "sha256": bytes_digest(blob)}, "cells": [], "examples": {}}
    (rg / "run.json").write_text(json.dumps(run))
    (w / "dangling").symlink_to(w / "no_such_target")
    (_write_run(w / "manifest_only") / "manifest.json").write_text("{}")
    (_write_run(w / "manifest_garbage") / "manifest.json").write_text("{not json")
    return w


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def _argv(case: list[str], w: Path) -> list[str]:
    subst = {"W": str(w), "OUT": str(w / "OUT"), "FILE": str(w / "FILE"), "RUN": str(w / "RUN")}
    out = []
    for a in case:
        head, sep, tail = a.partition("/")
        out.append(subst[head] + sep + tail if head in subst else a)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c)[:70])
def test_fault_is_one_line_exit_2_and_writes_nothing(case, workspace, tmp_path, monkeypatch, capsys):
    if torch.cuda.is_available() and any("cuda" == a for a in case):
        pytest.skip("a CUDA device is visible")
    monkeypatch.chdir(workspace)                        # a stray relative write lands in the snapshot
    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))  # ls may write its listing cache here
    before = _snapshot(workspace)
    rc = cli(_argv(case, workspace))
    err = capsys.readouterr().err
    assert rc == 2, err
    *progress, last = err.splitlines() or [""]
    assert last.startswith("error: ") and err.endswith("\n"), err
    assert all(line.startswith(("report: ", "merge: ")) for line in progress), err  # report/merge say what they do
    assert "Traceback" not in err
    assert _snapshot(workspace) == before


def test_the_catalogue_is_large():
    assert len(CASES) >= 100


# -- the hints name keys that exist -----------------------------------------------------------
@pytest.mark.parametrize("dataset", ["cifar10", "tinyimagenet", "imagefolder"])
def test_missing_data_hint_names_the_params_table(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SNNXAI_DATA", str(tmp_path / "nodata"))
    assert cli(["run", "smoke", "--out", str(tmp_path / "o"), "--set", f"data.dataset={dataset}"]) == 2
    err = capsys.readouterr().err
    assert "data.params.root=" in err and "--set data.root" not in err
    if dataset == "cifar10":
        assert "data.params.download=true" in err


# -- evaluation-only settings keep the shipped weights -----------------------------------------
def test_test_split_size_does_not_change_the_training_data():
    from bench.suite import load_suite

    s = load_suite("smoke", ["data.params.n_test=10"])
    assert s.data.training_data() == ("shapes", None)
    s = load_suite("smoke", ["data.params.n_test=10", 'data.params.texture="low"'])
    assert s.data.training_data() == ("shapes", {"texture": "low"})


def test_train_split_samples_do_not_depend_on_n_test():
    from bench.data import get_dataset

    a, b = get_dataset("shapes", "train", {"n_test": 10}), get_dataset("shapes", "train", {})
    assert torch.equal(a[5].image, b[5].image) and a[5].label == b[5].label and len(a) == len(b)


def test_n_test_keeps_the_zoo_and_other_data_needs_train_missing():
    from bench.pipeline.plan import make_plan
    from bench.pipeline.runtime import untrained_models
    from bench.suite import load_suite

    plan = make_plan(load_suite("smoke", ["data.params.n_test=10", "run.n_samples=4"]))
    assert untrained_models(plan) == {}             # the shipped zoo, exactly as without n_test
    plan = make_plan(load_suite("smoke", ['data.params.texture="high"', "run.n_samples=4"]))
    missing = untrained_models(plan)
    assert set(missing) == {"vgg5_snn_t8", "vgg5_ann"}
    assert "texture='high'" in missing["vgg5_snn_t8"]


# -- listings, warnings, fresh lines, umask ---------------------------------------------------
def test_ls_where_without_match_says_so(capsys):
    assert cli(["ls", "methods", "--where", "model_kind=nothing"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no methods match model_kind='nothing'") and out.count("\n") == 1


def test_listing_cache_equals_the_live_listing(tmp_path, monkeypatch):
    import bench.listing as listing
    from bench.models.cache import cache_dir

    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path))
    assert listing.cache_dir() == cache_dir()       # the same rule, without importing torch
    live = listing.live_listing("methods")
    path = tmp_path / "listings" / f"methods-{listing.source_fingerprint()}.json"
    listing._save(path, live)
    back = listing.Listing(**json.loads(path.read_text()))
    assert back == live
    assert back.where({"model_kind": "ann"}).rows == live.where({"model_kind": "ann"}).rows
    assert [r[0] for r in back.where({"model_kind": ["snn", "ann"]}).rows] == \
        [e.name for e in __import__("bench.registry").registry.METHODS.entries(model_kind=["snn", "ann"])]


def test_ls_methods_does_not_import_torch(tmp_path):
    """With the listing cached, `snnxai ls methods` imports neither torch nor captum."""
    import bench.listing as listing

    env = {**os.environ, "SNNXAI_CACHE": str(tmp_path)}
    path = tmp_path / "listings" / f"methods-{listing.source_fingerprint()}.json"
    listing._save(path, listing.live_listing("methods"))
    code = ("import sys; from bench.cli import main; main(['ls', 'methods']); "
            "print('heavy:', sorted(m for m in ('torch', 'captum', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout and "sam" in out.stdout


def test_warnings_are_one_line_and_silent_under_quiet(monkeypatch, capsys):
    import warnings

    from bench.commands import ls

    def warn_twice(args):
        for _ in range(2):
            warnings.warn("zoo checkpoint x.pt was trained\nwith other data", UserWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(ls, "main", warn_twice)
    assert cli(["ls", "methods"]) == 0
    assert capsys.readouterr().err == "warning: zoo checkpoint x.pt was trained with other data\n"
    monkeypatch.setattr(ls, "add_arguments", lambda p: p.add_argument("--quiet", action="store_true"))
    assert cli(["ls", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_error_after_a_progress_bar_starts_a_fresh_line(monkeypatch, capsys):
    from tqdm.auto import tqdm

    from bench.commands import ls
    from bench.errors import BenchError

    def fail_mid_bar(args):
        bar = tqdm(total=10, file=sys.stderr)
        bar.update(3)
        raise BenchError("boom")

    monkeypatch.setattr(ls, "main", fail_mid_bar)
    assert cli(["ls", "methods"]) == 2
    err = capsys.readouterr().err
    assert "\nerror: boom\n" in err and err.endswith("error: boom\n")


def test_interrupt_starts_a_fresh_line(monkeypatch, capsys):
    from tqdm.auto import tqdm

    from bench.commands import ls

    def interrupted(args):
        tqdm(total=5, file=sys.stderr).update(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(ls, "main", interrupted)
    assert cli(["ls", "methods"]) == 130
    assert "\ninterrupted\n" in capsys.readouterr().err


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(umask, mode, tmp_path):
    from bench.store import write_atomic

    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == mode


def test_corrupt_image_in_a_folder_is_named(tmp_path):
    from bench.data import get_dataset
    from bench.errors import BenchError

    for cls in ("a", "b"):  # a file named .png that holds text
        (tmp_path / "test" / cls).mkdir(parents=True)
        shutil.copy(Path(__file__).parent.parent / "bench" / "zoo" / "README.md", tmp_path / "test" / cls / "x.png")
    ds = get_dataset("imagefolder", "test", {"root": str(tmp_path), "image_size": 16})
    with pytest.raises(BenchError, match=r"cannot read image .*x\.png"):
        ds[0]


# -- issue 28: silent wrong results and messages, one test each ---------------------------------
def test_report_out_keeps_the_users_own_files(tmp_path, capsys):
    run = _write_run(tmp_path / "RUN")
    out = tmp_path / "mine"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "holiday.png").write_bytes(b"my photo")
    (out / "temporal_steps.csv").write_text("my table\n")
    assert cli(["report", str(run), "--out", str(out), "--quiet"]) == 0
    assert (out / "figures" / "holiday.png").read_bytes() == b"my photo"
    assert (out / "temporal_steps.csv").read_text() == "my table\n"
    # what a build wrote and a later build does not write is removed: it is the report's own
    listed = json.loads((out / ".report-files.json").read_text())["files"]
    assert "leaderboard.md" in listed and "figures/holiday.png" not in listed
    stale = out / "figures" / "stale_fig.png"
    stale.write_bytes(b"x")
    (out / ".report-files.json").write_text(json.dumps({"files": [*listed, "figures/stale_fig.png"]}))
    assert cli(["report", str(run), "--out", str(out), "--quiet"]) == 0
    assert not stale.exists() and (out / "figures" / "holiday.png").exists()
    capsys.readouterr()


def test_a_report_that_fails_half_way_leaves_the_earlier_one_whole(tmp_path, monkeypatch, capsys):
    """A full disk half-way through a rebuild: the earlier report stays as it was, byte for byte,
    and no partial folder is left (the build writes into a staging folder, then renames)."""
    import bench.report as report

    run = _write_run(tmp_path / "RUN")
    out = tmp_path / "REP"
    assert cli(["report", str(run), "--out", str(out), "--quiet"]) == 0
    rows = synthetic_rows()
    write_results(rows.assign(value=rows["value"] / 2), run / "results.csv")  # a rebuild writes other bytes
    (run / "run.json").write_text(json.dumps(run_json()))
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    real, calls = report.write_atomic, []

    def full_after_three(path, data):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(report, "write_atomic", full_after_three)
    assert cli(["report", str(run), "--out", str(out), "--quiet"]) != 0
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before and len(calls) == 4
    capsys.readouterr()


def test_empty_nmnist_recording_is_refused(tmp_path):
    pytest.importorskip("tonic")
    from bench.data import get_dataset
    from bench.errors import BenchError

    (tmp_path / "Test" / "4").mkdir(parents=True)
    (tmp_path / "Test" / "4" / "00001.bin").write_bytes(b"")
    with pytest.raises(BenchError, match=r"00001\.bin is empty \(0 bytes\)"):
        get_dataset("nmnist", "test", {"root": str(tmp_path)})


def test_recording_without_events_is_never_scored_as_zeros(tmp_path):
    import numpy as np

    from bench.data._events import EventDataset, Recording, Sensor, events_of
    from bench.errors import BenchError

    none = np.zeros(0, np.int64)
    ds = EventDataset("ev", "test", type("P", (), {"steps": 2, "image_size": 8})(), tmp_path,
                      Sensor(8, 8, lambda p: events_of(none, none, none, none)),
                      [Recording(tmp_path / "x.bin", 0)], ("a",))
    with pytest.raises(BenchError, match="holds no events"):
        ds[0]


def test_repro_pages_name_the_given_results_folder(tmp_path, capsys):
    res, out = tmp_path / "myres", tmp_path / "pages"
    res.mkdir()
    assert cli(["repro", "kim2021", "--pages-only", "--results", str(res), "--out", str(out)]) == 0
    text = (out / "layers.md").read_text() if (out / "layers.md").exists() else \
        "".join(p.read_text() for p in out.glob("*.md"))
    assert str(res / "layers") in text and "results/kim2021/layers" not in text
    capsys.readouterr()


def test_damage_hint_names_the_folder_the_run_is_in_now(tmp_path):
    from bench.store.results import command_here, rebuild_hint

    moved = tmp_path / "moved"
    (moved / "cells").mkdir(parents=True)
    hint = rebuild_hint(moved, {"command": "snnxai run smoke --out runs/old --limit 4"})
    assert f"snnxai run smoke --out {moved} --limit 4" in hint and "runs/old" not in hint
    assert command_here(moved, "snnxai run smoke") == f"snnxai run smoke --out {moved}"
    assert command_here(moved, "snnxai merge a b --out c") == "snnxai merge a b --out c"


def test_version_mismatch_is_named_before_nothing_to_compute(tmp_path, capsys):
    ref = Path(__file__).parent.parent / "results" / "leaderboard"
    assert cli(["run", "leaderboard", "--only", "method=sam", "--reference", str(ref), "--set", 'version="99"',
                "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "suite_version" in err and "nothing to compute" not in err and not (tmp_path / "o").exists()


def test_an_unwritable_heatmap_cache_warns_once_and_runs_uncached(tmp_path):
    import warnings

    from bench.store.heatcache import HeatmapCache

    (tmp_path / "file").write_text("x")           # a cache root below a file: every write fails
    cache = HeatmapCache(tmp_path / "file" / "heatmaps")
    cache.optional = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.put("ab" * 32, torch.zeros(2))
        cache.put("cd" * 32, torch.zeros(2))
    assert len(caught) == 1 and "running uncached" in str(caught[0].message)
    assert cache.get("ab" * 32) is None


def test_a_failed_write_names_its_file(tmp_path, monkeypatch):
    from bench import store

    real = os.fdopen

    class Full:
        def __init__(self, fd, mode):
            self.f = real(fd, mode)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, data):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fdopen", Full)
    with pytest.raises(OSError) as exc:
        store.write_atomic(tmp_path / "report.html", "x")
    assert exc.value.filename == str(tmp_path / "report.html")
    assert list(tmp_path.iterdir()) == []           # the temporary file is gone too
