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
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.results import empty_frame, read_csv_text, to_csv_text, write_results
from bench.store import write_atomic

MODEL_SCOPE = "_model_scope"


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, allow_nan=True) + "\n"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchError(f"cannot read {path}: {exc}") from None


def cell_stem(run_dir: Path, model: str, method: str) -> Path:
    return run_dir / "cells" / model / (method or MODEL_SCOPE)


def cell_file(run_dir: Path, model: str, method: str, suffix: str) -> Path:
    """``cells/<model>/<method><suffix>``: appended, never ``with_suffix``, since a swept
    variant's name may hold a dot (``sam@gamma=0.5``)."""
    stem = cell_stem(run_dir, model, method)
    return stem.with_name(stem.name + suffix)


def cell_done(run_dir: Path, model: str, method: str) -> bool:
    return cell_file(run_dir, model, method, ".json").is_file() and cell_file(run_dir, model, method, ".csv").is_file()


def write_cell(run_dir: Path, model: str, method: str, rows: pd.DataFrame, meta: dict) -> None:
    """Rows first, then the meta record: a cell is done only once both exist."""
    write_atomic(cell_file(run_dir, model, method, ".csv"), to_csv_text(rows if len(rows) else empty_frame()))
    write_atomic(cell_file(run_dir, model, method, ".json"), dump_json(meta))


def write_examples(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


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
            if not cell_done(d, model, method):
                raise BenchError(f"{d}: cell ({model}, {method or 'model scope'}) is not finished; "
                                 "re-run the same command to complete it")
            frames.append(read_csv_text(cell_file(d, model, method, ".csv").read_text()))
            cells.append({**read_json(cell_file(d, model, method, ".json")), "shard": man["shard"]})
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


def merge_examples(run_dirs: list[Path], out_dir: Path, limit: int) -> None:
    """Concatenate the shards' example arrays (in sample position order, first ``limit``)."""
    rel = sorted({p.relative_to(d / "examples") for d in run_dirs
                  for p in (d / "examples").rglob("*.npz")})
    for r in rel:
        parts = [load_npz(d / "examples" / r) for d in run_dirs if (d / "examples" / r).is_file()]
        parts.sort(key=lambda z: int(z["position"][0]))
        arrays = {}
        axes = {k: sample_axis(r, k) for k in parts[0]}
        for k, axis in axes.items():
            arrays[k] = parts[0][k] if axis is None else np.concatenate([z[k] for z in parts], axis=axis)
        order = np.argsort(arrays["position"], kind="stable")[:limit]
        arrays = {k: v if axes[k] is None else np.take(v, order, axis=axes[k]) for k, v in arrays.items()}
        write_examples(out_dir / "examples" / r, arrays)


def sample_axis(rel: Path, key: str) -> int | None:
    """The sample axis of an example array (None: not per sample, e.g. the attack budgets).

    ``<method>.npz``: maps ``[n, H, W]``, steps ``[T, n, H, W]``, adv_maps ``[E, n, H, W]``,
    adv_points ``[E]``; ``attacked.npz``: image ``[E, n, C, H, W]``,
    pred ``[E, n]``, points ``[E]``; everything else ``[n, ...]``."""
    if rel.name == "attacked.npz":
        return {"image": 1, "pred": 1, "points": None}.get(key, 0)
    return {"steps": 1, "adv_maps": 1, "adv_points": None}.get(key, 0)


def assemble(run_dirs: list[Path], out_dir: Path, merge: bool = False, compress: bool = False) -> pd.DataFrame:
    """Write ``out_dir/results.csv`` (``.csv.gz`` with ``compress``) and ``out_dir/run.json``
    from finished run directories: one run (or shard) directory, or with ``merge`` every shard
    of one run."""
    manifests = [read_json(d / "manifest.json") for d in run_dirs]
    manifest = merge_manifests(manifests) if merge else manifests[0]
    rows, cells, models, ckpts = collect(run_dirs)
    if len(run_dirs) > 1 or run_dirs[0] != out_dir:
        merge_examples(run_dirs, out_dir, manifest["config"]["run"]["examples"])
    write_results(rows, out_dir / ("results.csv.gz" if compress else "results.csv"))
    run = dict(manifest)
    run.setdefault("shards", [manifest.get("shard")])
    run.pop("shard", None)
    run["models_used"] = models
    run["checkpoints"] = dict(sorted(ckpts.items()))
    run["cost"] = [c for cell in cells for c in cell["cost"]]
    run["skipped"] = manifest["skipped_cells"] + manifest["skipped_metrics"]
    run["n_rows"] = int(len(rows))
    if merge:  # keep the wall times the runs measured (per shard when there are several)
        times = [read_json(d / "run.json").get("timing") for d in run_dirs if (d / "run.json").is_file()]
        if times:
            run["timing"] = times[0] if len(times) == 1 else {"shards": times}
    write_atomic(out_dir / "run.json", dump_json(run))
    return rows
