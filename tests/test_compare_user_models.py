"""``snnxai compare`` and ``snnxai run --reference`` on runs of a user's own SNN (bench.adapters).

A reference run of a tiny snnTorch model (its file and checkpoint written here) is built once;
a submission adds two throw-away methods to it with ``--only``: ``oracle`` (the ground-truth
mask: all its energy on the object) must be placed first on the energy pointing game and
``inverse`` (one minus the mask: none on it) last, each significantly apart from every other
entry, and every placement must be the rank of its mean among the means the two runs' own
results give. A run of another user model -- other weights, an edited model file, a model of
another name -- is refused, naming the difference; the same files from another folder are not."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from basic_models import SNNTORCH_USER_FILE

from bench.cli import main as cli
from bench.compare import first_difference
from bench.pipeline.plan import CellFilter, make_plan
from bench.pipeline.run import run_suite
from bench.pipeline.shard import Shard
from bench.registry import METHODS
from bench.suite import load_suite

pytest.importorskip("snntorch")

N, SIZE = 8, 16   # samples (the exact Wilcoxon test separates 8 same-signed differences), image size
SUITE = f"""
version = "1"
[run]
name = "mine"
batch_size = 4
n_samples = {N}
examples = 0
[data]
dataset = "shapes"
[data.params]
image_size = {SIZE}
[models.my_net]
adapter = "snntorch"
source = "{{src}}:build"
checkpoint = "{{ckpt}}"
T = 2
[methods.sam]
[methods.center]
[metrics.pointing_game]
[metrics.energy_pointing_game]
[report]
n_boot = 50
"""
NEW = ("oracle", "inverse")
META = dict(summary="test only", model_kind="any", temporal=False, needs_grad=False, needs_label=False,
            version="1", reference="test only")


def _masks(sample_id: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]``: each sample's ground-truth object mask (a shapes sample's id is its index)."""
    from bench.data import get_dataset

    ds = get_dataset("shapes", "test", {"image_size": SIZE})
    return torch.stack([ds[int(i)].mask for i in sample_id]).float()


def oracle(inp, params: None) -> torch.Tensor:
    return _masks(inp.sample_id)


def inverse(inp, params: None) -> torch.Tensor:
    return 1.0 - _masks(inp.sample_id)


@pytest.fixture(scope="module")
def new_methods():
    with METHODS.temporary("oracle", oracle, **META), METHODS.temporary("inverse", inverse, **META):
        yield NEW


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """my_net.py with two checkpoints (a.pt, b.pt: other weights), the same file and a.pt copied
    to same/, an edited my_net.py (another readout, same weights) in edited/, and net_b.py (the
    edited code as another model)."""
    d = tmp_path_factory.mktemp("user")
    code = textwrap.dedent(SNNTORCH_USER_FILE)
    edited = code.replace("out.append(mem2)", "out.append(2 * mem2)")
    assert edited != code
    (d / "my_net.py").write_text(code)
    (d / "net_b.py").write_text(edited)
    for sub, text in (("same", code), ("edited", edited)):
        (d / sub).mkdir()
        (d / sub / "my_net.py").write_text(text)
    ns: dict[str, object] = {}
    exec(compile(code, str(d / "my_net.py"), "exec"), ns)
    torch.save(ns["build"]().state_dict(), d / "a.pt")
    shutil.copy(d / "a.pt", d / "same" / "a.pt")
    torch.manual_seed(1)
    torch.save(ns["Net"]().state_dict(), d / "b.pt")
    return d


def suite(files: Path, tmp_path: Path, src: str = "my_net.py", ckpt: str = "a.pt", *overrides: str):
    path = tmp_path / f"{Path(src).stem}-{Path(ckpt).stem}-{len(list(tmp_path.glob('*.toml')))}.toml"
    path.write_text(SUITE.format(src=files / src, ckpt=files / ckpt))
    return path, load_suite(path, [f'run.cache_dir="{tmp_path / "cache"}"', *overrides])


@pytest.fixture(scope="module")
def reference(files, tmp_path_factory) -> Path:
    """The whole suite on my_net with a.pt: sam and center."""
    d = tmp_path_factory.mktemp("ref")
    return run_suite(suite(files, d)[1], out=d / "run", progress=False, report=False)


@pytest.fixture(scope="module")
def submission(new_methods, files, reference, tmp_path_factory) -> Path:
    """oracle and inverse on the same model, against the reference (only the new cells run)."""
    d = tmp_path_factory.mktemp("sub")
    return run_suite(suite(files, d)[1], out=d / "run", progress=False, report=False,
                     only=CellFilter(methods=NEW), reference=reference)


def _ranks_from_results(*run_dirs: Path) -> pd.DataFrame:
    """Mean per (metric, method) over the shared samples and its rank (1 = best, ties averaged),
    straight from the runs' results.csv (both metrics here: higher is better)."""
    rows = pd.concat([pd.read_csv(d / "results.csv") for d in run_dirs])
    rows = rows[rows["timestep"].isna() & rows["point"].isna()]
    means = rows.groupby(["metric", "method"])["value"].mean().rename("mean").reset_index()
    means["rank"] = means.groupby("metric")["mean"].rank(ascending=False, method="average")
    return means.set_index(["metric", "method"])


@pytest.mark.slow
def test_compare_places_a_user_models_new_methods_where_their_scores_say(submission, reference, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli(["compare", str(submission), "--against", str(reference), "--out", str(out)]) == 0, \
        capsys.readouterr().err
    p = pd.read_csv(out / "placement.csv", keep_default_na=False).set_index(["metric", "method"])
    assert set(p.index.get_level_values("method")) == set(NEW) and set(p["model"]) == {"my_net"}
    best, worst = p.loc[("energy_pointing_game", "oracle")], p.loc[("energy_pointing_game", "inverse")]
    assert best["mean"] == 1.0 and worst["mean"] == 0.0          # all / none of the map's energy on the object
    assert (best["rank"], best["n_entries"], worst["rank"]) == (1, 4, 4)
    assert set(best["better_than"].split(";")) == {"sam", "center", "inverse"} and best["worse_than"] == ""
    assert set(worst["worse_than"].split(";")) == {"sam", "center", "oracle"} and worst["better_than"] == ""
    want = _ranks_from_results(reference, submission)
    for (metric, method), row in p.iterrows():
        assert row["rank"] == want.loc[(metric, method), "rank"], (metric, method)
        assert row["mean"] == pytest.approx(want.loc[(metric, method), "mean"], abs=1e-6)
    assert "| oracle (new) |" in (out / "compare.md").read_text()


def test_the_same_files_from_another_folder_are_comparable(files, tmp_path):
    """A user model is its file and weights by digest, not by path."""
    ref = _manifest(suite(files, tmp_path)[1])
    assert first_difference(_manifest(suite(files, tmp_path, "same/my_net.py", "same/a.pt")[1]), ref) is None


def _manifest(s) -> dict:
    """run.json's static part of a run of suite ``s`` (its model adapted, nothing computed)."""
    plan = make_plan(s)
    return plan.manifest(Shard(), "", list(range(N)), list(range(N)))


OTHER = {  # what differs -> (model file, checkpoint, the words the refusal names)
    "checkpoint": ("my_net.py", "b.pt", "user model 'my_net' differs in its weights"),
    "model file": ("edited/my_net.py", "a.pt", "user model 'my_net' differs in its model file"),
    "model": ("net_b.py", "a.pt", "user model 'net_b' ("),   # --model net_b.py:build: another name
}


@pytest.mark.parametrize("other", OTHER)
def test_first_difference_names_another_user_model(other, files, tmp_path):
    """The check itself, on the static part of two runs' run.json (nothing computed)."""
    src, ckpt, words = OTHER[other]
    ref = _manifest(suite(files, tmp_path)[1])
    if other == "model":  # what `--model net_b.py:build --checkpoint a.pt` makes of the suite
        path = tmp_path / "b.toml"
        path.write_text(SUITE.format(src=files / src, ckpt=files / ckpt).replace("[models.my_net]", "[models.net_b]"))
        run = _manifest(load_suite(path))
    else:
        run = _manifest(suite(files, tmp_path, src, ckpt)[1])
    assert words in first_difference(run, ref)


@pytest.mark.slow
@pytest.mark.parametrize("other", OTHER)
def test_a_run_of_another_user_model_is_refused_before_any_work(other, new_methods, files, reference,
                                                                tmp_path, capsys):
    src, ckpt, words = OTHER[other]
    path, _ = suite(files, tmp_path, *(("my_net.py", "a.pt") if other == "model" else (src, ckpt)))
    model = ["--model", f"{files / src}:build", "--checkpoint", str(files / ckpt), "--model-param", "T=2"]
    out = tmp_path / "never"
    rc = cli(["run", str(path), "--quiet", "--out", str(out), "--only", "method=oracle", "--reference", str(reference),
              "--set", f'run.cache_dir="{tmp_path / "cache"}"', *(model if other == "model" else [])])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: cannot compare this run") and err.count("\n") == 1, err
    assert words in err and "in the reference" in err, err
    assert not out.exists()


@pytest.mark.slow
def test_compare_refuses_a_finished_run_of_other_weights(new_methods, files, reference, tmp_path, capsys):
    _, s = suite(files, tmp_path, "my_net.py", "b.pt")
    other = run_suite(s, out=tmp_path / "b", progress=False, report=False, only=CellFilter(methods=("oracle",)))
    assert cli(["compare", str(other), "--against", str(reference), "--out", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot compare") and err.count("\n") == 1, err
    ref_card = json.loads((reference / "run.json").read_text())["versions"]["models"]["my_net"]
    run_card = json.loads((other / "run.json").read_text())["versions"]["models"]["my_net"]
    # the message names both checkpoints and their weights' digests
    assert "differs in its weights" in err and "b.pt" in err and "a.pt" in err
    assert run_card["weights_sha256"][:12] in err and ref_card["weights_sha256"][:12] in err
    assert not (tmp_path / "cmp").exists()


def test_an_edited_model_file_is_another_run_id(files, tmp_path):
    """The file's digest is part of the card, hence of the run id (a resumed run never mixes
    cells of two versions of the user's code)."""
    _, same = suite(files, tmp_path)
    _, edited = suite(files, tmp_path, "edited/my_net.py")
    a, b = make_plan(same), make_plan(edited)
    card = a.cards["my_net"]
    assert card.file_sha256 == hashlib.sha256((files / "my_net.py").read_bytes()).hexdigest()
    assert a.run_id != b.run_id and a.cards["my_net"].weights_sha256 == b.cards["my_net"].weights_sha256
