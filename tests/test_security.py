"""Hostile files and names (issue 28): a payload planted in every file format the project reads
must never run, and a traversal name in every name that reaches a path must never put a file
outside ``--out``.

Each payload, if it ran, would create a marker file; each case asserts that no marker appears,
that the command ends in one ``error:`` line with exit status 2 (or, where the format allows a
safe fallback, in a correct result), and that nothing changed in the sandbox outside ``--out``.
Fast: no training, no run gets past its checks (the hostile input is refused first)."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_report import run_json, synthetic_rows

from bench.cli import main as cli
from bench.errors import BenchError
from bench.store.results import write_results


# -- payloads -----------------------------------------------------------------------------------
class _Touch:
    """Unpickled by a permissive loader, this calls ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Exec:
    """The same through ``builtins.exec`` (another global a naive allow-list might admit)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('x')",))


def payload(marker: Path, wrap=lambda p: p, protocol: int = 2) -> bytes:
    return pickle.dumps(wrap(_Touch(marker)), protocol=protocol)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A folder holding everything a case touches; the cwd and the caches live in it, so a stray
    write anywhere lands in the snapshot."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SNNXAI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SNNXAI_DATA", str(tmp_path / "data"))
    return tmp_path


def _snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    out = {}
    for p in root.rglob("*"):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        if p.is_file():
            out[str(p.relative_to(root))] = (p.stat().st_size, p.stat().st_mtime_ns)
    return out


def _markers(root: Path) -> list[Path]:
    return sorted(root.rglob("MARKER*")) + sorted(Path("/tmp").glob(f"MARKER-{root.name}*"))


def refused(argv: list[str], root: Path, capsys, out: Path | None = None) -> str:
    """Run the CLI; assert one error line, exit 2, no marker, nothing written outside ``out``
    (and ``out`` itself absent: a refused command writes nothing)."""
    before = _snapshot(root, out)
    rc = cli([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.splitlines()[-1].startswith("error: ") and "Traceback" not in err, err
    assert not _markers(root), "a payload ran"
    assert _snapshot(root, out) == before, "a file was written outside --out"
    if out is not None:
        assert not out.exists(), f"a refused command wrote {sorted(out.rglob('*'))}"
    return err.splitlines()[-1]


# -- CIFAR-10: a pickle format, read with a restricted unpickler ------------------------------
def _cifar(root: Path, batch: bytes | None = None, meta: bytes | None = None) -> Path:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    good = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (base / name).write_bytes(good)
    if batch is not None:
        (base / "test_batch").write_bytes(batch)
    if meta is not None:
        (base / "batches.meta").write_bytes(meta)
    return root


@pytest.mark.parametrize("where", ["batch", "meta", "nested", "exec", "protocol5"])
def test_cifar_payload_is_refused_not_run(where, sandbox):
    from bench.data import get_dataset

    m = sandbox / "MARKER"
    blob = {"batch": payload(m), "meta": None,
            "nested": payload(m, lambda p: {b"data": np.zeros((1, 3072), np.uint8), b"labels": [p]}),
            "exec": pickle.dumps(_Exec(m), protocol=2), "protocol5": payload(m, protocol=5)}[where]
    root = _cifar(sandbox / "c", batch=blob, meta=payload(m) if where == "meta" else None)
    with pytest.raises(BenchError, match=r"refused CIFAR-10 file .*(test_batch|batches\.meta)"):
        get_dataset("cifar10", "test", {"root": str(root)})
    assert not _markers(sandbox)


@pytest.mark.parametrize("bad", [
    {b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]},     # wrong dtype
    {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]},        # wrong shape
    {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 99]},      # label out of range
    {b"data": np.array([None, None], dtype=object), b"labels": [0, 1]},  # object array
    [1, 2, 3],                                                         # not a dict
])
def test_cifar_file_of_the_wrong_shape_is_named(bad, sandbox):
    from bench.data import get_dataset

    root = _cifar(sandbox / "c", batch=pickle.dumps(bad, protocol=2))
    with pytest.raises(BenchError, match="refused CIFAR-10 file"):
        get_dataset("cifar10", "test", {"root": str(root)})


def test_cifar_run_with_a_payload_writes_nothing(sandbox, capsys):
    m = sandbox / "MARKER"
    root = _cifar(sandbox / "c", batch=payload(m))
    out = sandbox / "OUT"
    refused(["run", "smoke", "--out", out, "--quiet", "--no-report", "--set", "data.dataset=cifar10",
             "--set", f'data.params.root="{root}"', "--set", "data.params.image_size=32"], sandbox, capsys, out)


# -- checkpoints: the zoo, the cache, a --checkpoint file -------------------------------------
def _hostile_state(marker: Path) -> bytes:
    """A torch zip whose data.pkl holds the payload (torch.save format, weights_only refuses it)."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("data.pkl"):
                data = payload(marker)
            z.writestr(info, data)
    return out.getvalue()


def _plant_entry(path: Path, data: bytes, meta: dict | None = None) -> None:
    """A store entry whose sidecar's sha256 matches the planted bytes (a deliberate forger)."""
    from bench.store import write_entry

    write_entry(path, data, meta or {})


@pytest.mark.parametrize("kind", ["hostile", "cut", "raw_pickle", "not_a_state_dict"])
def test_zoo_checkpoint_with_a_matching_hash_is_a_one_line_error(kind, sandbox):
    from bench.models.load import load_model_with_provenance
    from bench.models.zoo import ZOO_DIR

    m = sandbox / "MARKER"
    zoo = sandbox / "zoo"
    zoo.mkdir()
    meta = json.loads((ZOO_DIR / "vgg5_snn_t8.json").read_text())
    good = (ZOO_DIR / "vgg5_snn_t8.pt").read_bytes()
    buf = io.BytesIO()
    torch.save([1, 2], buf)
    data = {"hostile": _hostile_state(m), "cut": good[: len(good) // 3], "raw_pickle": payload(m),
            "not_a_state_dict": buf.getvalue()}[kind]
    _plant_entry(zoo / "vgg5_snn_t8.pt", data, {k: v for k, v in meta.items() if k not in ("sha256", "bytes")})
    with pytest.raises(BenchError, match=r"checkpoint .*vgg5_snn_t8\.pt (cannot be read|holds)"):
        load_model_with_provenance("vgg5_snn_t8", zoo_dir=zoo, train_if_missing=False)
    assert not _markers(sandbox)


def _plant_cache(sandbox: Path, data_by_model: dict[str, bytes]) -> list[str]:
    """Plant cache checkpoints for the smoke suite on ``texture="high"`` (not the zoo's data);
    returns the --set overrides that make a run read them."""
    from bench.models.build import data_config
    from bench.models.cache import cache_path, training_meta
    from bench.models.load import _key, get_card

    over = ['data.params.texture="high"', f'run.cache_dir="{sandbox / "cache"}"']
    for name, data in data_by_model.items():
        card = get_card(name)
        d = data_config(card, "shapes", {"texture": "high"})
        path = cache_path(card, _key(card, d, 0), sandbox / "cache")
        from bench.config import to_plain

        _plant_entry(path, data, to_plain(training_meta(card, d, 0, "planted", {})))
    return over


def _state_bytes(name: str) -> bytes:
    from bench.models import build_model

    buf = io.BytesIO()
    torch.save(build_model(name).state_dict(), buf)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["hostile", "cut"])
def test_cached_checkpoint_refused_before_the_run_writes(kind, sandbox, capsys):
    m = sandbox / "MARKER"
    ann = _state_bytes("vgg5_ann")
    bad = _hostile_state(m) if kind == "hostile" else _state_bytes("vgg5_snn_t8")[:5000]
    over = _plant_cache(sandbox, {"vgg5_snn_t8": bad, "vgg5_ann": ann})
    out = sandbox / "OUT"
    line = refused(["run", "smoke", "--out", out, "--quiet", "--no-report", "--limit", "4",
                    *sum((["--set", o] for o in over), [])], sandbox, capsys, out)
    assert "vgg5_snn_t8" in line and "cannot be read" in line


@pytest.mark.parametrize("kind", ["hostile", "raw_pickle", "missing", "garbage"])
def test_checkpoint_flag_with_a_payload_writes_nothing(kind, sandbox, capsys):
    m = sandbox / "MARKER"
    ck = sandbox / "w.pt"
    if kind != "missing":
        ck.write_bytes({"hostile": _hostile_state(m), "raw_pickle": payload(m), "garbage": b"\x00" * 64}[kind])
    out = sandbox / "OUT"
    refused(["run", "smoke", "--out", out, "--quiet", "--no-report", "--limit", "4", "--checkpoint", ck],
            sandbox, capsys, out)


def test_heatmap_cache_entry_with_a_payload_is_a_miss(sandbox):
    from bench.store.heatcache import HeatmapCache

    m = sandbox / "MARKER"
    cache = HeatmapCache(sandbox / "cache" / "heatmaps")
    key = HeatmapCache.key({"x": 1})
    cache.write(key, _hostile_state(m))       # sha256 matches: the bytes are the forger's
    assert cache.get(key) is None and cache.misses == 1
    cache.write(key, payload(m))
    assert cache.get(key) is None
    assert not _markers(sandbox)


# -- run folders: results, run.json, manifest, example maps -----------------------------------
def _run_dir(d: Path, rows=None, run: dict | None = None) -> Path:
    d.mkdir(parents=True)
    write_results(synthetic_rows() if rows is None else rows, d / "results.csv")
    (d / "run.json").write_text(json.dumps(run or run_json()))
    return d


def test_example_file_holding_a_pickled_object_is_refused(sandbox, capsys):
    m = sandbox / "MARKER"
    run = _run_dir(sandbox / "RUN")
    model = run_json()["models"][0]
    (run / "examples" / model).mkdir(parents=True)
    obj = np.empty(1, dtype=object)
    obj[0] = _Touch(m)
    np.savez(run / "examples" / model / "sam.npz", maps=obj)
    out = sandbox / "REP"
    rc = cli(["report", str(run), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert not _markers(sandbox)
    assert rc in (0, 2) and "Traceback" not in err   # refused, or drawn without that file
    if rc == 2:
        assert err.splitlines()[-1].startswith("error: ")


@pytest.mark.parametrize("field, value", [
    ("dataset", "../../ESCAPE"), ("dataset", ".."), ("model", "../../ESCAPE"),
])
def test_report_names_from_a_run_folder_never_leave_out(field, value, sandbox, capsys):
    rows = synthetic_rows()
    run = run_json()
    if field == "dataset":
        rows["dataset"] = value
    else:
        rows["model"] = rows["model"].replace(run["models"][0], value)
        run["models"] = [value if x == run["models"][0] else x for x in run["models"]]
    d = _run_dir(sandbox / "RUN", rows, run)
    out = sandbox / "deep" / "REP"
    line = refused(["report", d, "--out", out, "--quiet"], sandbox, capsys, out)
    assert "cannot name a file" in line


def test_merge_with_a_traversal_cell_name_writes_nothing(sandbox, capsys):
    d = _run_dir(sandbox / "RUN")
    man = {"run_id": "x", "shard": {"index": 1, "count": 1}, "cells": [{"model": "../../ESCAPE", "method": "sam"}],
           "models": ["../../ESCAPE"], "positions": [0], "sample_ids": [0],
           "config": {"run": {"examples": 0}}}
    (d / "manifest.json").write_text(json.dumps(man))
    out = sandbox / "OUT"
    line = refused(["merge", d, "--out", out], sandbox, capsys, out)
    assert "cannot name a file" in line


# -- data folders: Tiny-ImageNet, event recordings ---------------------------------------------
def test_tinyimagenet_files_holding_payloads_run_nothing(sandbox):
    from bench.data import get_dataset

    m = sandbox / "MARKER"
    base = sandbox / "tin" / "tiny-imagenet-200"
    (base / "val" / "images").mkdir(parents=True)
    (base / "wnids.txt").write_bytes(payload(m))
    (base / "val" / "val_annotations.txt").write_bytes(payload(m))
    (base / "val" / "images" / "val_0.JPEG").write_bytes(payload(m))
    # a payload is no UTF-8 annotation file: one BenchError line, and nothing ran
    with pytest.raises(BenchError, match="not a UTF-8 text file"):
        ds = get_dataset("tinyimagenet", "val", {"root": str(sandbox / "tin")})
        ds[0]
    assert not _markers(sandbox)


def test_event_recording_holding_a_payload_runs_nothing(sandbox):
    pytest.importorskip("tonic")
    from bench.data import get_dataset

    m = sandbox / "MARKER"
    (sandbox / "nm" / "Test" / "3").mkdir(parents=True)
    blob = payload(m)
    (sandbox / "nm" / "Test" / "3" / "00001.bin").write_bytes(blob + b"\x00" * (-len(blob) % 5))
    with pytest.raises(BenchError):
        get_dataset("nmnist", "test", {"root": str(sandbox / "nm")})[0]
    assert not _markers(sandbox)


# -- suites: traversal names in every name that reaches a path --------------------------------
EVIL_SRC = """
import pathlib
pathlib.Path({marker!r}).write_text("ran")

def build():
    raise SystemExit("built")
"""

USER_SUITE = """
[run]
name = "evil"
n_samples = 4
batch_size = 4
[data.params]
image_size = 16
[models."{name}"]
adapter = "plain"
source = "{src}:build"
T = 2
[methods.sam]
[metrics.sparseness]
"""


@pytest.mark.parametrize("name", ["../../../ESCAPE", "..", ".", "a/b", "a\\\\b", ".hidden", ""])
def test_user_model_name_that_reaches_a_path_is_refused_before_its_code_runs(name, sandbox, capsys):
    m = sandbox / "MARKER"
    (sandbox / "evil.py").write_text(EVIL_SRC.format(marker=str(m)))
    suite = sandbox / "evil.toml"
    suite.write_text(USER_SUITE.format(name=name, src=sandbox / "evil.py"))
    out = sandbox / "a" / "b" / "OUT"
    line = refused(["run", suite, "--out", out, "--quiet", "--no-report"], sandbox, capsys, out)
    assert "model name" in line and "cannot name a file" in line
    line = refused(["run", suite, "--out", out, "--dry-run"], sandbox, capsys, out)   # dry runs refuse too
    assert "cannot name a file" in line


@pytest.mark.parametrize("stem", ["...py", "..py"])
def test_model_file_whose_stem_is_dots_is_refused(stem, sandbox, capsys):
    m = sandbox / "MARKER"
    src = sandbox / stem
    src.write_text(EVIL_SRC.format(marker=str(m)))
    out = sandbox / "OUT"
    argv = ["run", "smoke", "--out", out, "--quiet", "--no-report", "--model", f"{src}:build", "--adapter", "plain"]
    line = refused(argv, sandbox, capsys, out)
    if Path(stem).stem.startswith("."):
        assert "rename the file" in line


@pytest.mark.parametrize("override", [
    'methods.sam.sweep.layer=["../x"]', 'methods.sam.sweep.layer=["a/b"]', 'run.name="../x"',
    'models=["../vgg5_snn_t8"]', 'run.name="a/b"',
])
def test_other_names_that_reach_a_path_are_refused(override, sandbox, capsys):
    out = sandbox / "OUT"
    refused(["run", "smoke", "--out", out, "--quiet", "--no-report", "--set", override], sandbox, capsys, out)


@pytest.mark.parametrize("only", ["method=../../x", "model=../../x", "method=..", "model=.."])
def test_only_names_that_reach_a_path_are_refused(only, sandbox, capsys):
    out = sandbox / "OUT"
    refused(["run", "smoke", "--out", out, "--quiet", "--no-report", "--only", only], sandbox, capsys, out)


def test_store_keys_and_cell_paths_refuse_traversal(tmp_path):
    from bench.store import ContentStore, rundir

    store = ContentStore(tmp_path, ".pt", fanout=False)
    for bad in ("../x", "..", "a/b", ""):
        with pytest.raises(BenchError, match="cannot name a file"):
            store.path(bad)
        with pytest.raises(BenchError, match="cannot name a file"):
            rundir.cell_file(tmp_path, bad, "sam", ".csv")
        if bad:
            with pytest.raises(BenchError, match="cannot name a file"):
                rundir.cell_file(tmp_path, "m", bad, ".csv")
    assert rundir.cell_file(tmp_path, "vgg5_snn_t8", "sam@gamma=0.5", ".csv").parent == tmp_path / "cells" / "vgg5_snn_t8"


def test_report_manifest_cannot_delete_outside_its_folder(sandbox, capsys):
    d = _run_dir(sandbox / "RUN")
    victim = sandbox / "victim.txt"
    victim.write_text("mine")
    out = sandbox / "REP"
    out.mkdir()
    (out / "mine.png").write_text("mine")
    (out / ".report-files.json").write_text(json.dumps(
        {"files": ["../victim.txt", str(victim), "figures/../../victim.txt", "mine.png/..", "../RUN/run.json"]}))
    assert cli(["report", str(d), "--out", str(out), "--quiet"]) == 0
    assert victim.read_text() == "mine" and (out / "mine.png").read_text() == "mine"
    assert (d / "run.json").is_file()


def test_gz_results_are_read_whole(sandbox):
    """A results.csv.gz is decompressed in memory and checked; nothing of it is executed."""
    d = _run_dir(sandbox / "RUN")
    (d / "results.csv.gz").write_bytes(gzip.compress(payload(sandbox / "MARKER")))
    (d / "results.csv").unlink()
    from bench.store.results import read_results

    with pytest.raises(BenchError):
        read_results(d)
    assert not _markers(sandbox)
