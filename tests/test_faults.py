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

from bench.cli import main as cli
from bench.results import write_results
from test_report import run_json, synthetic_rows

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
CASES = RUN_CASES + LS_CASES + TRAIN_CASES + PERF_CASES + EXPLAIN_CASES + REPORT_CASES + MERGE_COMPARE_CASES


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
    (_write_run(w / "manifest_only") / "manifest.json").write_text("{}")
    (_write_run(w / "manifest_garbage") / "manifest.json").write_text("{not json")
    return w


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


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
    from bench.plan import make_plan
    from bench.runtime import untrained_models
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
