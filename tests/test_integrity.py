"""Integrity end to end (issue 16): no silently wrong result from a damaged file.

The two silent cases of the issue, reproduced and now caught:

(a) bytes flipped inside a cached heatmap tensor: torch would load the changed tensor without a
    complaint (shown below), but the entry's sha256 sidecar no longer matches, so the entry is a
    miss, recomputed (same maps as an undamaged cache) and told in one ``note:`` line;
(b) a cell CSV or results.csv cut at a row boundary: still well-formed CSV, so only the row
    count and sha256 recorded beside it catch it; a resumed run recomputes the cell, assembly,
    merge, report and compare refuse the file with a one-line ``error:`` (exit 2) naming it.

Fast tests use hand-built cells and tiny models; the end-to-end resume and re-run on the
``smoke`` suite are marked slow.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from basic_models import tiny_batch, tiny_vgg
from test_report import run_json, synthetic_rows

from bench.attacks.core import AttackSpec
from bench.cli import main as cli
from bench.errors import BenchError
from bench.explain import explain_batch
from bench.store import arrays_digest, rundir
from bench.store.heatcache import MAX_NOTES, HeatmapCache
from bench.store.results import read_results, write_results


def cut_rows(path, keep: int) -> None:
    """Keep the header and the first ``keep`` data rows: a file cut exactly at a row boundary."""
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:1 + keep]) + b"\n")


# -- (a) a cached heatmap with flipped bytes ----------------------------------------------------
def flip_inside_tensor(path, value: torch.Tensor) -> None:
    """Flip one byte in the middle of ``value``'s raw data inside its torch.save file."""
    raw = bytearray(path.read_bytes())
    at = raw.index(value.numpy().tobytes()) + value.numel() * value.element_size() // 2
    raw[at] ^= 0x40
    path.write_bytes(bytes(raw))


def test_flipped_heatmap_bytes_are_recomputed_not_used(tmp_path, capsys):
    snn, b = tiny_vgg("snn"), tiny_batch(3)
    cache = HeatmapCache(tmp_path)
    run = lambda: explain_batch("snn_gradcam", None, snn, snn.card, b, target=b.y, cache=cache,
                                model_key="ckpt").maps
    clean = run()
    entries = sorted(tmp_path.rglob("*.pt"))
    assert len(entries) == 3
    for p in entries:
        stored = torch.load(p, weights_only=True)
        flip_inside_tensor(p, stored)
        # what made the case silent: torch reads the damaged file without an error
        assert not torch.equal(torch.load(p, weights_only=True), stored)
    capsys.readouterr()
    again = run()
    assert torch.equal(again, clean)                 # recomputed: the undamaged run's maps
    assert cache.damaged == 3 and cache.hits == 0
    notes = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 3 and all(n.startswith("note: damaged cache entry") and "recomputed" in n
                                   for n in notes)
    assert {str(p) in n for p in entries for n in notes} >= {True}
    assert torch.equal(run(), clean) and cache.hits == 3  # the entries were rewritten whole


def test_a_damaged_cache_is_told_by_name_a_few_times_then_counted(tmp_path, capsys):
    cache = HeatmapCache(tmp_path)
    keys = [cache.key({"i": i}) for i in range(MAX_NOTES + 3)]
    for k in keys:
        cache.put(k, torch.ones(4))
        cache.path(k).write_bytes(cache.path(k).read_bytes()[:-1])  # cut: sha256 mismatch
    assert all(cache.get(k) is None for k in keys) and cache.damaged == len(keys)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == MAX_NOTES + 1 and "without a note" in lines[-1]


def test_an_adversarial_batch_changed_in_memory_is_recrafted(capsys):
    from bench.pipeline.memo import Memo
    from bench.pipeline.services import direct_services
    from metrics.base import PROBED

    ann, b, memo = tiny_vgg("ann"), tiny_batch(2), Memo()
    spec = AttackSpec(kind="fgsm", steps=1)
    craft = lambda: direct_services(b, model=ann, data_mean=(0.5,) * 3, data_std=(0.5,) * 3,
                                    memo=memo).attack(spec, 0.1, PROBED)
    first = craft()
    ((stored, _),) = memo._kept.values()
    stored.add_(1.0)                                 # damage the kept copy in place
    assert torch.equal(craft(), first)               # re-crafted, not the damaged copy
    assert "note: damaged memo entry (attack" in capsys.readouterr().err


# -- (b) cells and results cut at a row boundary ------------------------------------------------
MODELS, METHODS = ("snn", "ann"), ("good", "mid", "random", "")


def cell_rows(model: str, method: str) -> pd.DataFrame:
    df = synthetic_rows()
    return df[(df["model"] == model) & (df["method"] == method)]


def make_run_dir(d, examples: bool = True):
    """A run directory holding every cell of the synthetic table (as the runner writes them)."""
    cells = [{"model": m, "method": k, "method_model": m if k else "", "layer": ""} for m in MODELS for k in METHODS]
    manifest = {**run_json(), "cells": cells, "shard": {"index": 1, "count": 1}, "skipped_cells": [],
                "skipped_metrics": [], "command": "snnxai run syn --out RUN",
                "sample_ids": sorted(set(synthetic_rows()["sample_id"].tolist()))}
    rundir.write_atomic(d / "manifest.json", rundir.dump_json(manifest))
    for c in cells:
        ex = {}
        if examples and c["method"]:
            rel = f"examples/{c['model']}/{c['method']}.npz"
            ex[rel] = rundir.write_examples(d / rel, {"position": np.arange(2), "sample_id": np.arange(2),
                                                       "maps": np.full((2, 4, 4), 0.5, np.float16)})
        rundir.write_cell(d, c["model"], c["method"], cell_rows(c["model"], c["method"]),
                          {**c, "cost": []}, ex)
    return d


def test_cells_record_row_counts_and_digests(tmp_path):
    d = make_run_dir(tmp_path)
    rec = json.loads(rundir.cell_file(d, "snn", "good", ".json").read_text())["integrity"]
    assert rec["rows"] == len(cell_rows("snn", "good")) > 0
    assert rec["examples"] == {"examples/snn/good.npz": arrays_digest(
        rundir.load_npz(d / "examples" / "snn" / "good.npz"))}


def test_a_cell_cut_at_a_row_boundary_is_not_done_on_resume(tmp_path, capsys):
    d = make_run_dir(tmp_path)
    csv = rundir.cell_file(d, "snn", "good", ".csv")
    n = len(cell_rows("snn", "good"))
    cut_rows(csv, n // 2)
    pd.read_csv(csv)                                 # still well-formed CSV: only the record tells
    assert not rundir.cell_done(d, "snn", "good")   # a resumed run recomputes it
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"note: damaged cell {csv} (holds {n // 2} rows, its record {n}" in err
    assert rundir.cell_done(d, "snn", "mid")        # the others are kept
    # the recorded command, with --out naming the folder the run is in now (issue 28)
    with pytest.raises(BenchError, match=rf"damaged cell .*good\.csv.*re-run `snnxai run syn --out {d}`"):
        rundir.collect([d])                          # assembly and merge refuse it


def test_a_changed_example_file_makes_its_cell_not_done(tmp_path):
    d = make_run_dir(tmp_path)
    rundir.write_examples(d / "examples" / "ann" / "mid.npz", {"position": np.arange(2), "sample_id": np.arange(2),
                                                              "maps": np.zeros((2, 4, 4), np.float16)})
    assert rundir.cell_problem(d, "ann", "mid").endswith("mid.npz (content digest mismatch)")
    (d / "examples" / "ann" / "good.npz").write_bytes(b"PK\x03\x04 cut")
    assert "unreadable" in rundir.cell_problem(d, "ann", "good")


def test_a_cell_written_before_records_existed_is_accepted(tmp_path):
    d = make_run_dir(tmp_path)
    meta_path = rundir.cell_file(d, "snn", "good", ".json")
    meta = json.loads(meta_path.read_text())
    del meta["integrity"]
    meta_path.write_text(json.dumps(meta))
    cut_rows(rundir.cell_file(d, "snn", "good", ".csv"), 3)
    assert rundir.cell_done(d, "snn", "good")       # nothing to check against (documented)


def assembled(tmp_path, compress: bool = False):
    d = make_run_dir(tmp_path)
    rows = rundir.assemble([d], d, compress=compress)
    return d, rows


def test_run_json_records_results_cells_and_examples(tmp_path):
    d, rows = assembled(tmp_path)
    rec = json.loads((d / "run.json").read_text())["integrity"]
    text = (d / "results.csv").read_bytes()
    assert len(rows) == len(synthetic_rows())
    assert rec["results"] == {"file": "results.csv", "rows": len(rows), "sha256": hashlib.sha256(text).hexdigest()}
    assert len(rec["cells"]) == len(MODELS) * len(METHODS) and sum(c["rows"] for c in rec["cells"]) == len(rows)
    assert set(rec["examples"]) == {f"examples/{m}/{k}.npz" for m in MODELS for k in METHODS if k}
    assert len(read_results(d)) == len(rows)


def test_results_cut_at_a_row_boundary_is_an_error_for_report(tmp_path, capsys):
    d, rows = assembled(tmp_path)
    cut_rows(d / "results.csv", len(rows) // 2)
    with pytest.raises(BenchError, match=rf"holds {len(rows) // 2} rows, run.json records {len(rows)}"):
        read_results(d)                              # report, compare and the summary read through this
    assert cli(["report", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {d / 'results.csv'} is damaged")
    assert f"re-run `snnxai run syn --out {d}`" in err and "--force" in err
    assert not (d / "report").exists()               # nothing written


def test_a_cut_gzip_results_file_is_an_error(tmp_path):
    d, _ = assembled(tmp_path, compress=True)
    assert len(gzip.decompress((d / "results.csv.gz").read_bytes())) > 0
    data = (d / "results.csv.gz").read_bytes()
    (d / "results.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BenchError, match="not a complete gzip file"):
        read_results(d)


def test_a_damaged_example_file_is_an_error_for_report(tmp_path, capsys):
    d, _ = assembled(tmp_path)
    rundir.write_examples(d / "examples" / "snn" / "mid.npz", {"position": np.arange(1)})
    assert cli(["report", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged example file" in err and "mid.npz" in err


def test_results_without_a_record_are_read_unchecked(tmp_path):
    """A run.json from before the integrity record (committed runs): accepted, not checked."""
    write_results(synthetic_rows(), tmp_path / "results.csv")
    (tmp_path / "run.json").write_text(json.dumps(run_json()))
    cut_rows(tmp_path / "results.csv", 10)
    assert len(read_results(tmp_path)) == 10


def test_unparsable_results_are_a_one_line_error(tmp_path):
    (tmp_path / "results.csv").write_bytes(b"run_id,dataset\n\xff\xfe,1\n")
    with pytest.raises(BenchError, match="not a readable results table"):
        read_results(tmp_path)


def test_compare_refuses_a_damaged_run(tmp_path, monkeypatch):
    from bench import compare

    d, rows = assembled(tmp_path / "run")
    ref = tmp_path / "ref"
    shutil.copytree(d, ref)
    run = json.loads((ref / "run.json").read_text())
    run["cells"] = run["cells"][1:]                  # the reference lacks one cell: "new" in the run
    (ref / "run.json").write_text(json.dumps(run))
    monkeypatch.setattr(compare, "check_compatible", lambda *a, **k: None)  # hand-built provenance
    assert len(compare.compare_runs(d, ref).rows)   # undamaged: compared
    cut_rows(d / "results.csv", 5)
    with pytest.raises(BenchError, match="results.csv is damaged: it holds 5 rows"):
        compare.compare_runs(d, ref)


# -- end to end on the smoke suite ---------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from bench.pipeline.run import run_suite
    from bench.suite import load_suite

    cache = tmp_path_factory.mktemp("cache")
    suite = load_suite("smoke", [f'run.cache_dir="{cache}"'])
    return suite, cache, run_suite(suite, out=tmp_path_factory.mktemp("full") / "run", progress=False, report=False)


@pytest.mark.slow
def test_smoke_resume_recomputes_a_cut_cell(smoke, tmp_path, capsys):
    from bench.pipeline.run import run_suite

    suite, _, full = smoke
    out = tmp_path / "run"
    shutil.copytree(full, out)
    cut_rows(out / "cells" / "vgg5_snn_t8" / "sam.csv", 20)
    cut_rows(out / "results.csv", 100)
    capsys.readouterr()
    run_suite(suite, out=out, progress=False, report=False)
    assert "note: damaged cell" in capsys.readouterr().err
    assert (out / "results.csv").read_bytes() == (full / "results.csv").read_bytes()


@pytest.mark.slow
def test_smoke_with_a_damaged_heatmap_cache_gives_the_same_table(smoke, tmp_path, capsys):
    from bench.pipeline.run import run_suite

    suite, cache, full = smoke
    entries = sorted((cache / "heatmaps").rglob("*.pt"))
    assert entries
    for p in entries[::3]:                           # a third of the cached maps
        flip_inside_tensor(p, torch.load(p, weights_only=True))
    capsys.readouterr()
    again = run_suite(suite, out=tmp_path / "again", progress=False, report=False)
    assert "note: damaged cache entry" in capsys.readouterr().err
    assert (again / "results.csv").read_bytes() == (full / "results.csv").read_bytes()
