"""The results store: the long ``results.csv`` schema and its canonical text form (written with
:func:`bench.store.write_atomic`).

One row per (sample, model, method, metric, timestep, point). The text form is canonical:
rows sorted by every key column and floats printed with a fixed format, so the same numbers
always give the same bytes (a re-run, a resumed run and merged shards are byte-identical).

Empty fields: ``timestep`` and ``point`` are empty for time-aggregated / scalar scores,
``method``, ``method_model`` and ``layer`` are empty for model-scope metrics. An undefined
score (e.g. an empty mask) is ``nan``.

Integrity: :func:`write_results` returns the row count and sha256 of the CSV text it wrote
(recorded in run.json), and :func:`read_results` checks the text it read against them
(:func:`check_results`), so a cut or edited results file is an error, never a wrong table.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.store import bytes_digest, write_atomic

#: the required columns of design.md, in order
COLUMNS = ("run_id", "dataset", "split", "sample_id", "target", "pred", "model", "method",
           "method_model", "layer", "metric", "timestep", "point", "value")
#: extra columns: ``degenerate`` = 1 where the raw map was all-zero/constant
EXTRA = ("degenerate",)
ALL_COLUMNS = COLUMNS + EXTRA
STR_COLS = ("run_id", "dataset", "split", "model", "method", "method_model", "layer", "metric")
INT_COLS = ("sample_id", "target", "pred", "degenerate")
#: sort order; every row is unique under these keys
SORT_KEYS = ("dataset", "split", "model", "method", "method_model", "layer", "metric",
             "timestep", "point", "sample_id")
VALUE_FORMAT = "%.6g"   # six significant digits: stable across reruns, plenty for a score
POINT_FORMAT = "%.10g"  # curve x positions (fractions, epsilons) keep more digits


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in ALL_COLUMNS})


def _dtype(col: str) -> str:
    return "str" if col in STR_COLS else "int64" if col in INT_COLS else "float64"


def normalize_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in schema order with schema dtypes, rows in canonical order."""
    missing = [c for c in ALL_COLUMNS if c not in df.columns]
    if missing:
        raise BenchError(f"results table lacks columns {missing}")
    df = df[list(ALL_COLUMNS)].copy()
    for c in ALL_COLUMNS:
        df[c] = df[c].fillna("").astype(str) if c in STR_COLS else df[c].astype(_dtype(c))
    df = df.sort_values(list(SORT_KEYS), na_position="first", kind="mergesort", ignore_index=True)
    dup = df.duplicated(list(SORT_KEYS))
    if dup.any():
        r = df[dup].iloc[0]
        raise BenchError(f"results table has duplicate rows, e.g. model={r.model} method={r.method} "
                         f"metric={r.metric} sample_id={r.sample_id}")
    return df


def _fmt(values: np.ndarray, fmt: str) -> list[str]:
    return ["" if np.isnan(v) and fmt == POINT_FORMAT else fmt % v for v in values.tolist()]


def to_csv_text(df: pd.DataFrame) -> str:
    """The canonical CSV text of a results table (sorted, fixed float formats)."""
    df = normalize_frame(df)
    cols: list[list[str]] = []
    for c in ALL_COLUMNS:
        v = df[c]
        if c in STR_COLS:
            cols.append([_quote(s) for s in v.tolist()])
        elif c in INT_COLS:
            cols.append([str(i) for i in v.tolist()])
        elif c == "timestep":
            cols.append(["" if np.isnan(t) else str(int(t)) for t in v.to_numpy(float).tolist()])
        elif c == "point":
            cols.append(_fmt(v.to_numpy(float), POINT_FORMAT))
        else:
            cols.append(_fmt(v.to_numpy(float), VALUE_FORMAT))
    lines = [",".join(ALL_COLUMNS)] + [",".join(r) for r in zip(*cols)]
    return "\n".join(lines) + "\n"


def _quote(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(ch in s for ch in ',"\n') else s


def read_csv_text(text: str) -> pd.DataFrame:
    """Parse results CSV text back into a typed frame (empty -> NaN for timestep/point)."""
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise BenchError(f"results CSV lacks columns {missing}")
    if "degenerate" not in raw.columns:
        raw["degenerate"] = "0"
    out = pd.DataFrame(index=raw.index)
    for c in ALL_COLUMNS:
        if c in STR_COLS:
            out[c] = raw[c].astype(str)
        elif c in INT_COLS:
            out[c] = raw[c].astype("int64")
        else:
            out[c] = raw[c].replace("", "nan").to_numpy(object).astype(float)
    return out


def read_results(path: str | Path) -> pd.DataFrame:
    """Read ``results.csv`` or ``results.csv.gz`` (or a run dir holding one)."""
    p = Path(path)
    if p.is_dir():
        for name in ("results.csv", "results.csv.gz"):
            if (p / name).is_file():
                p = p / name
                break
        else:
            raise BenchError(f"no results.csv in {p}")
    if not p.is_file():
        raise BenchError(f"results file not found: {p}")
    data = p.read_bytes()
    if p.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:  # cut or flipped: not a gzip stream any more
            raise BenchError(f"{p} is damaged (not a complete gzip file: {exc}); {_fix(p)}") from None
    check_results(p, data)
    try:
        return read_csv_text(data.decode())
    except (ValueError, pd.errors.ParserError) as exc:  # UnicodeDecodeError is a ValueError
        raise BenchError(f"{p} is not a readable results table ({str(exc).splitlines()[0]}); {_fix(p)}") from None


def check_results(path: Path, text: bytes) -> None:
    """Check a results file's CSV ``text`` (decompressed) against the ``integrity.results``
    record of the ``run.json`` beside it: same file name, row count and sha256, else a
    one-line BenchError naming the file and the fix.

    Backward compatible: with no readable run.json beside the file, or one written before the
    record existed (no ``integrity``), or a record for another file name, nothing is checked;
    where the record exists a mismatch is never accepted."""
    try:
        run = json.loads((path.parent / "run.json").read_text())
    except (OSError, ValueError):
        return
    integrity = run.get("integrity") if isinstance(run, dict) else None
    rec = integrity.get("results") if isinstance(integrity, dict) else None
    if not isinstance(rec, dict) or rec.get("file") != path.name:
        return
    if bytes_digest(text) != rec.get("sha256"):
        raise BenchError(f"{path} is damaged: it holds {count_rows(text)} rows, run.json records {rec.get('rows')} "
                         f"(sha256 mismatch); {_fix(path, run)}")


def _fix(path: Path, run: dict | None = None) -> str:
    """The command that rebuilds a damaged results file (:func:`rebuild_hint`)."""
    if run is None:
        try:
            run = json.loads((path.parent / "run.json").read_text())
        except (OSError, ValueError):
            run = {}
    return rebuild_hint(path.parent, run if isinstance(run, dict) else {})


def write_results(df: pd.DataFrame, path: str | Path) -> dict[str, int | str]:
    """Write the canonical CSV (gzip-compressed, with a fixed mtime, if the name ends in .gz);
    returns ``{"rows", "sha256"}`` of the CSV text (before compression), run.json's record."""
    text = to_csv_text(df).encode()
    write_atomic(path, gzip.compress(text, mtime=0) if str(path).endswith(".gz") else text)
    return {"rows": count_rows(text), "sha256": bytes_digest(text)}


def count_rows(text: bytes) -> int:
    """Data rows of canonical results CSV text: lines after the header (the canonical text ends
    every row with a newline, and no field holds one)."""
    return max(text.count(b"\n") - 1, 0)


# -- how to rebuild a damaged run folder (also the run folder's damage messages) ----------------
def command_here(run_dir: Path, command: str) -> str:
    """``command`` (as a run recorded it) with its ``--out`` naming ``run_dir``: a run folder that
    was moved or copied must be rebuilt where it is now, not where it was written. A command
    without ``--out`` wrote the default folder: ``--out run_dir`` is added."""
    import shlex

    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    if not argv or argv[0] != "snnxai" or len(argv) < 2 or argv[1] != "run":
        return command
    here = str(run_dir)
    for i, a in enumerate(argv):
        if a == "--out" and i + 1 < len(argv):
            argv[i + 1] = here
            break
        if a.startswith("--out="):
            argv[i] = f"--out={here}"
            break
    else:
        argv += ["--out", here]
    return " ".join(shlex.quote(a) for a in argv)


def rebuild_hint(run_dir: Path, run: Mapping[str, Any]) -> str:
    """How to rebuild a run directory's damaged assembled files (results, examples)."""
    command = command_here(run_dir, run["command"]) if run.get("command") else "the run's command"
    if (run_dir / "cells").is_dir():
        return (f"re-run `{command}` to rebuild it from the checked cells (add --force to "
                f"recompute everything), or delete {run_dir} and run again")
    return ("restore it from its source (re-run the `snnxai merge` that wrote it, or `git checkout` "
            f"a committed copy), or delete {run_dir} and run again")
