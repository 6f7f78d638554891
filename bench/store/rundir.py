"""A run directory: the cell store a run writes into, and its assembly into results.csv + run.json.

Layout::

    manifest.json                 static facts of this run (or shard), written before any cell
    cells/<model>/model.json      the probed model's accuracy on this run's samples
    cells/_checkpoints/<m>.json   checkpoint provenance (sha256, path) of every model loaded
    cells/<model>/<method>.csv    one cell's rows (canonical text)
    cells/<model>/<method>.json   its cost and skip record; written last, so it marks the cell done
    cells/<model>/_model_scope.*  the model-scope metrics of that model (method empty)
    examples/inputs.npz, examples/<model>/<method>.npz   a few samples' maps for the gallery
    examples/<model>/attacked.npz                        their attacked inputs (stability metrics)
    results.csv, run.json         assembled once every planned cell is done
    report/                       written by :mod:`bench.report`

The file names are storage only: every row carries its own keys. Because cells are
deterministic and the assembled table is canonical, a resumed run, a re-run and merged shards
give the same results.csv bytes.

Integrity (no silently wrong result from a damaged file): a cell's record
(``<method>.json``) holds ``integrity``: the row count and sha256 of its CSV text and the
:func:`~bench.store.arrays_digest` of each example file it wrote. A resumed run checks them
(:func:`cell_done`): a damaged cell is told in one ``note:`` line and recomputed. Assembly and
``merge`` check them too (:func:`cell_problem`) and refuse a damaged cell with a one-line
:class:`BenchError` naming the file and the fix. ``run.json`` gains ``integrity``
(:func:`integrity_record`): the results file's name, row count and sha256 (of its CSV text,
so ``.csv`` and ``.csv.gz`` agree), every cell's row count and sha256, and the digest of every
example file; :func:`bench.store.results.read_results` and :func:`verify_examples` check those.
A record from before these fields existed is accepted unchecked (nothing to check against).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.store import arrays_digest, bytes_digest, check_name, note, write_atomic
from bench.store.results import (
    command_here,
    count_rows,
    empty_frame,
    read_csv_text,
    rebuild_hint,
    to_csv_text,
    write_results,
)

MODEL_SCOPE = "_model_scope"
#: the run's example inputs, relative to the run directory
INPUTS = "examples/inputs.npz"
#: version of the ``integrity`` records in cell records and run.json
INTEGRITY_FORMAT = 1


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, allow_nan=True) + "\n"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, or bytes that are not UTF-8
        raise BenchError(f"cannot read {path}: {exc}") from None


def cell_stem(run_dir: Path, model: str, method: str) -> Path:
    """Where a cell's files live. The names come from a suite or from a run folder's manifest,
    either of which may be hostile: a name that would leave ``cells/`` is refused here, the one
    place every cell path is made."""
    check_name(model, "model name")
    if method:
        check_name(method, "method name")
    return run_dir / "cells" / model / (method or MODEL_SCOPE)


def check_suite_names(suite: Any) -> None:
    """Every model and method (or variant) name of ``suite`` can name a file (BenchError
    otherwise): checked before a run writes anything, so a hostile ``[models."../x"]`` is refused
    up front, not half-way through writing its cells."""
    for m in suite.models:
        check_name(m, "model name")
    for m in suite.methods:
        check_name(m, "method name")


def cell_file(run_dir: Path, model: str, method: str, suffix: str) -> Path:
    """``cells/<model>/<method><suffix>``: appended, never ``with_suffix``, since a swept
    variant's name may hold a dot (``sam@gamma=0.5``)."""
    stem = cell_stem(run_dir, model, method)
    return stem.with_name(stem.name + suffix)


def cell_written(run_dir: Path, model: str, method: str) -> bool:
    """Whether both files of a cell exist (not yet checked against its record)."""
    return cell_file(run_dir, model, method, ".json").is_file() and cell_file(run_dir, model, method, ".csv").is_file()


def cell_done(run_dir: Path, model: str, method: str) -> bool:
    """Whether a cell is written and its files match its record (a resumed run skips it). A
    damaged cell (a CSV cut at a row boundary, a changed example file, an unreadable record)
    is not done: one ``note:`` line tells it, and the caller recomputes it."""
    if not cell_written(run_dir, model, method):
        return False
    problem = cell_problem(run_dir, model, method)
    if problem:
        note(f"damaged cell {problem}; recomputed")
    return problem is None


def cell_problem(run_dir: Path, model: str, method: str) -> str | None:
    """What is wrong with a written cell's files, as ``PATH (why)``; None when they match the
    cell's ``integrity`` record, or when the record has none (written before it existed)."""
    return read_cell(run_dir, model, method)[2]


def read_cell(run_dir: Path, model: str, method: str) -> tuple[bytes, dict, str | None]:
    """``(csv bytes, record, problem)`` of a written cell: the bytes returned are the bytes
    checked; ``problem`` as in :func:`cell_problem` (then the other two may be empty)."""
    meta_path = cell_file(run_dir, model, method, ".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        return b"", {}, f"{meta_path} (unreadable: {exc})"
    if not isinstance(meta, dict):
        return b"", {}, f"{meta_path} (not a JSON object)"
    csv_path = cell_file(run_dir, model, method, ".csv")
    try:
        data = csv_path.read_bytes()
    except OSError as exc:
        return b"", meta, f"{csv_path} (unreadable: {exc})"
    rec = meta.get("integrity")
    if not isinstance(rec, dict):
        return data, meta, None
    if bytes_digest(data) != rec.get("sha256"):
        return data, meta, f"{csv_path} (holds {count_rows(data)} rows, its record {rec.get('rows')}; sha256 mismatch)"
    for rel, digest in rec.get("examples", {}).items():
        problem = npz_problem(run_dir / rel, digest)
        if problem:
            return data, meta, problem
    return data, meta, None


def npz_problem(path: Path, digest: str) -> str | None:
    """``PATH (why)`` when the arrays of ``path`` are missing, unreadable or not ``digest``."""
    try:
        arrays = load_npz(path)
    except Exception as exc:  # a cut zip raises BadZipFile, EOFError, ValueError, OSError...
        return f"{path} (unreadable: {type(exc).__name__})"
    if arrays_digest(arrays) != digest:
        return f"{path} (content digest mismatch)"
    return None


def write_cell(run_dir: Path, model: str, method: str, rows: pd.DataFrame, meta: dict,
               examples: Mapping[str, str] | None = None) -> None:
    """Rows first, then the meta record: a cell is done only once both exist. The record gains
    ``integrity``: the CSV's row count and sha256, and ``examples`` (the example files the cell
    wrote, path relative to the run directory -> :func:`~bench.store.arrays_digest`)."""
    text = to_csv_text(rows if len(rows) else empty_frame()).encode()
    integrity = {"format": INTEGRITY_FORMAT, "rows": count_rows(text), "sha256": bytes_digest(text),
                 "examples": dict(sorted((examples or {}).items()))}
    write_atomic(cell_file(run_dir, model, method, ".csv"), text)
    write_atomic(cell_file(run_dir, model, method, ".json"), dump_json({**meta, "integrity": integrity}))


def write_examples(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """Write ``arrays`` as a compressed ``.npz``; returns their :func:`~bench.store.arrays_digest`
    (the file's bytes hold zip timestamps, so the content digest is what records compare)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())
    return arrays_digest(arrays)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _readable_npz(path: Path) -> dict[str, np.ndarray]:
    """:func:`load_npz`, a damaged file a one-line BenchError (its content was checked against
    its cell's record already, where the cell recorded one)."""
    try:
        return load_npz(path)
    except Exception as exc:  # a cut zip: BadZipFile, EOFError, ValueError, OSError...
        raise BenchError(f"damaged example file {path} (unreadable: {type(exc).__name__}); delete it "
                         "and re-run the command that wrote its run directory") from None


def verify_examples(run_dir: str | Path) -> None:
    """Check the example files that ``run.json``'s ``integrity`` lists (BenchError naming the
    first damaged one and the fix); a run.json without the record is accepted unchecked."""
    d = Path(run_dir)
    try:
        run = json.loads((d / "run.json").read_text())
    except (OSError, ValueError):
        return  # no readable run.json: its reader reports that
    rec = run.get("integrity") if isinstance(run, dict) else None
    for rel, digest in (rec.get("examples", {}) if isinstance(rec, dict) else {}).items():
        problem = npz_problem(d / rel, digest)
        if problem:
            raise BenchError(f"damaged example file {problem}; {rebuild_hint(d, run)}")


# -- manifest -------------------------------------------------------------------------------
def check_manifest(run_dir: Path, manifest: dict, force: bool) -> None:
    """Refuse to mix two different runs (or shards) in one directory unless ``force``."""
    p = run_dir / "manifest.json"
    if not p.is_file() or force:
        return
    old = read_json(p)
    if old.get("run_id") != manifest["run_id"] or old.get("shard") != manifest["shard"]:
        raise BenchError(f"{run_dir} holds run {old.get('run_id')} shard {old.get('shard')}, not "
                         f"{manifest['run_id']} shard {manifest['shard']}; use another --out or --force")


# -- assembly -------------------------------------------------------------------------------
def _cell_keys(manifest: dict) -> list[tuple[str, str]]:
    return [(c["model"], c["method"]) for c in manifest["cells"]]


def collect(run_dirs: list[Path]) -> tuple[pd.DataFrame, list[dict], dict[str, dict], dict[str, dict]]:
    """All rows, cell records, model records and checkpoint records of one run's directories."""
    frames, cells, models, ckpts = [], [], {}, {}
    for d in run_dirs:
        man = read_json(d / "manifest.json")
        for model, method in _cell_keys(man):
            if not cell_written(d, model, method):
                raise BenchError(f"{d}: cell ({model}, {method or 'model scope'}) is not finished; "
                                 "re-run the same command to complete it")
            data, meta, problem = read_cell(d, model, method)
            if problem:  # the run's own resume recomputes it; say how
                shown = command_here(d, man["command"]) if man.get("command") else f"the command that wrote {d}"
                raise BenchError(f"damaged cell {problem}; delete it and re-run `{shown}` to recompute it")
            frames.append(read_csv_text(data.decode()))
            cells.append({**meta, "shard": man["shard"]})
        for model in man["models"]:
            p = d / "cells" / model / "model.json"
            if p.is_file():
                rec = read_json(p)
                old = models.setdefault(model, {**rec, "n_correct": 0, "n": 0})
                old["n_correct"] += rec["n_correct"]
                old["n"] += rec["n"]
        for p in sorted((d / "cells" / "_checkpoints").glob("*.json")):
            rec = read_json(p)
            ckpts[rec.pop("model")] = rec
    rows = pd.concat(frames, ignore_index=True) if frames else empty_frame()
    for rec in models.values():
        rec["accuracy"] = rec["n_correct"] / rec["n"] if rec["n"] else None
    return rows, cells, models, ckpts


def merge_manifests(manifests: list[dict]) -> dict:
    """One manifest for a set of shards: same run, every shard exactly once."""
    first = manifests[0]
    ids = {m["run_id"] for m in manifests}
    if len(ids) > 1:
        raise BenchError(f"cannot merge different runs: {sorted(ids)}")
    count = first["shard"]["count"]
    got = sorted(m["shard"]["index"] for m in manifests)
    if any(m["shard"]["count"] != count for m in manifests) or got != list(range(1, count + 1)):
        shown = ", ".join(f"{m['shard']['index']}/{m['shard']['count']}" for m in manifests)
        raise BenchError(f"shards do not cover 1..{count} exactly once: got {shown}")
    order = sorted(manifests, key=lambda m: m["shard"]["index"])
    pairs = sorted((p, s) for m in order for p, s in zip(m["positions"], m["sample_ids"]))
    merged = {k: v for k, v in first.items() if k not in ("positions", "sample_ids", "shard")}
    merged["shards"] = [m["shard"] for m in order]
    merged["positions"] = [p for p, _ in pairs]
    merged["sample_ids"] = [s for _, s in pairs]
    return merged


def cell_ref(cell: Mapping[str, Any]) -> dict[str, Any]:
    """A collected cell record's identity in run.json's per-cell lists: model, method, shard index."""
    return {"model": cell["model"], "method": cell["method"], "shard": (cell.get("shard") or {}).get("index", 1)}


def integrity_record(name: str, results: Mapping[str, int | str], cells: list[dict],
                     examples: Mapping[str, str]) -> dict[str, Any]:
    """run.json's ``integrity``: the results file (name, rows, sha256 of its CSV text), each
    cell's rows and sha256 (with its shard index), and each example file's arrays digest."""
    return {"format": INTEGRITY_FORMAT,
            "results": {"file": name, **results},
            "cells": [{**cell_ref(c), "rows": c["integrity"]["rows"], "sha256": c["integrity"]["sha256"]}
                      for c in cells if isinstance(c.get("integrity"), dict)],
            "examples": dict(sorted(examples.items()))}


def merge_examples(run_dirs: list[Path], out_dir: Path, limit: int) -> dict[str, str]:
    """Concatenate the shards' example arrays (in sample position order, first ``limit``);
    returns the written files (path relative to ``out_dir``) -> arrays digest."""
    rel = sorted({p.relative_to(d / "examples") for d in run_dirs
                  for p in (d / "examples").rglob("*.npz")})
    merged: dict[Path, dict[str, np.ndarray]] = {}
    for r in rel:  # every file read (and a damaged one refused) before the first is written
        parts = [_readable_npz(d / "examples" / r) for d in run_dirs if (d / "examples" / r).is_file()]
        parts.sort(key=lambda z: int(z["position"][0]))
        arrays = {}
        axes = {k: sample_axis(r, k) for k in parts[0]}
        for k, axis in axes.items():
            arrays[k] = parts[0][k] if axis is None else np.concatenate([z[k] for z in parts], axis=axis)
        order = np.argsort(arrays["position"], kind="stable")[:limit]
        merged[r] = {k: v if axes[k] is None else np.take(v, order, axis=axes[k]) for k, v in arrays.items()}
    return {(Path("examples") / r).as_posix(): write_examples(out_dir / "examples" / r, arrays)
            for r, arrays in merged.items()}


def sample_axis(rel: Path, key: str) -> int | None:
    """The sample axis of an example array (None: not per sample, e.g. the attack budgets).

    ``<method>.npz``: maps ``[n, H, W]``, steps ``[T, n, H, W]``, adv_maps ``[E, n, H, W]``,
    adv_points ``[E]``; ``attacked.npz``: image ``[E, n, C, H, W]``,
    pred ``[E, n]``, points ``[E]``; everything else ``[n, ...]``."""
    if rel.name == "attacked.npz":
        return {"image": 1, "pred": 1, "points": None}.get(key, 0)
    return {"steps": 1, "adv_maps": 1, "adv_points": None}.get(key, 0)


def _timing(path: Path) -> Any:
    """The ``timing`` record of a shard's run.json (BenchError naming it when unreadable)."""
    run = read_json(path)
    if not isinstance(run, dict):
        raise BenchError(f"cannot read {path}: not a JSON object")
    return run.get("timing")


def assemble(run_dirs: list[Path], out_dir: Path, merge: bool = False, compress: bool = False) -> pd.DataFrame:
    """Write ``out_dir/results.csv`` (``.csv.gz`` with ``compress``) and ``out_dir/run.json``
    from finished run directories: one run (or shard) directory, or with ``merge`` every shard
    of one run."""
    manifests = [read_json(d / "manifest.json") for d in run_dirs]
    manifest = merge_manifests(manifests) if merge else manifests[0]
    rows, cells, models, ckpts = collect(run_dirs)
    # every input read before the first write: a shard's cut run.json must not leave a half merge
    times = [_timing(d / "run.json") for d in run_dirs if (d / "run.json").is_file()] if merge else []
    if len(run_dirs) > 1 or run_dirs[0] != out_dir:
        examples = merge_examples(run_dirs, out_dir, manifest["config"]["run"]["examples"])
    else:  # the cells' checked records, and the inputs this invocation just wrote
        examples = {rel: dg for c in cells for rel, dg in c.get("integrity", {}).get("examples", {}).items()}
        if (out_dir / INPUTS).is_file():
            examples[INPUTS] = arrays_digest(load_npz(out_dir / INPUTS))
    name = "results.csv.gz" if compress else "results.csv"
    results = write_results(rows, out_dir / name)
    run = dict(manifest)
    run["integrity"] = integrity_record(name, results, cells, examples)
    run.setdefault("shards", [manifest.get("shard")])
    run.pop("shard", None)
    run["models_used"] = models
    run["checkpoints"] = dict(sorted(ckpts.items()))
    run["cost"] = [c for cell in cells for c in cell["cost"]]
    run["memory"] = [{**cell_ref(c), **c["memory"]} for c in cells if "memory" in c]  # older cells have none
    run["skipped"] = manifest["skipped_cells"] + manifest["skipped_metrics"]
    run["n_rows"] = int(len(rows))
    if merge:  # keep the wall times the runs measured (per shard when there are several)
        if times:
            run["timing"] = times[0] if len(times) == 1 else {"shards": times}
    write_atomic(out_dir / "run.json", dump_json(run))
    return rows
