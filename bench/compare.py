"""Place a run's new cells among a reference run's (``snnxai compare RUN --against REF``).

A submission to the leaderboard is a run that computed only its new cells
(``snnxai run leaderboard --only method=NAME --reference results/leaderboard``). This module

1. checks that the two runs can be compared at all (:func:`check_compatible`): same dataset
   (name, split, fingerprint), suite version, evaluation and model seeds, explained target,
   samples (every sample of the run is one of the reference's), post-processing, the user's
   own models (:func:`user_model_difference`: the same model file and weights, by digest),
   and, for every model, method and metric both runs configure, the same record and
   parameters. The first difference is named in a one-line :class:`BenchError`;
2. merges the per-sample rows (:func:`compare_runs`): the reference's cells as committed, the
   run's cells the reference lacks next to them, on the samples both hold;
3. re-ranks every (model, metric) column with the report's statistics (:mod:`bench.stats`:
   bootstrap CIs seeded per cell, so a reference cell keeps its committed CI on the same
   samples; Wilcoxon signed-rank tests, Holm-corrected) and tells, for each new entry, which
   entries it is significantly better or worse than;
4. writes ``compare.md``, ``compare.html`` and ``placement.csv`` (:func:`write_comparison`),
   the full columns rendered by the leaderboard's own code (:mod:`bench.report.leaderboard`).

Model-scope metrics (method "") rank the models: their rows form one more column family,
:data:`MODELS_FAMILY`, whose entries are the models (how a new model is placed).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench import stats
from bench.errors import BenchError
from bench.store.results import read_results

#: the ``model`` label of the family that ranks models on model-scope metrics
MODELS_FAMILY = "(models)"
NEW = " (new)"

if TYPE_CHECKING:
    from bench.pipeline.plan import Plan
    from bench.report.data import ReportData
    from bench.report.leaderboard import Board

Run = dict[str, Any]   # a parsed run.json (or a run's manifest before it has run)


# -- reading ----------------------------------------------------------------------------------
#: what :func:`first_difference` and :func:`compare_runs` read of a run.json: key -> its JSON type
_REQUIRED = {"run_id": str, "dataset": dict, "sample_ids": list, "versions": dict, "config": dict, "cells": list}


def load_run(path: str | Path) -> Run:
    """run.json of a finished run directory (BenchError if there is none, or if it lacks a part
    a comparison reads: a run.json from elsewhere or an edited one is named, never a KeyError)."""
    p = Path(path) / "run.json"
    if not p.is_file():
        raise BenchError(f"{path} is not a finished run directory (no run.json)")
    try:
        run = json.loads(p.read_text())
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bytes that are not UTF-8
        raise BenchError(f"cannot read {p}: {exc}") from None
    if not isinstance(run, dict):
        raise BenchError(f"{p} is not a run record (a JSON {type(run).__name__}, not an object)")
    for key, kind in _REQUIRED.items():
        if not isinstance(run.get(key), kind):
            what = "lacks" if key not in run else f"has a {type(run[key]).__name__} as"
            raise BenchError(f"{p} {what} '{key}' (expected a JSON {'object' if kind is dict else kind.__name__}): "
                             "not a run.json that snnxai wrote, or damaged")
    ds, versions = run["dataset"], run["versions"]
    missing = [f"dataset.{k}" for k in ("name", "split", "fingerprint") if k not in ds]
    missing += [f"versions.{k}" for k in ("models", "methods", "metrics")
                if k in versions and not isinstance(versions[k], dict)]
    missing += ["cells[].model/method" for c in run["cells"][:1]
                if not (isinstance(c, dict) and "model" in c and "method" in c)]
    if missing:
        raise BenchError(f"{p} lacks {', '.join(missing)}: not a run.json that snnxai wrote, or damaged")
    return run


def unchecked_reason(path: str | Path, run: Run) -> str | None:
    """Why the results of run directory ``path`` cannot be checked against its run.json (None:
    they can, and :func:`bench.store.results.read_results` checks them as it reads). A run.json without
    an ``integrity`` record -- written before it existed, or with it deleted -- lets an edited
    results file through, so a comparison names such a run on every output."""
    rec = run.get("integrity")
    res = rec.get("results") if isinstance(rec, dict) else None
    if not isinstance(res, dict) or not res.get("sha256"):
        return f"{path} has no integrity record in its run.json: its results are unchecked"
    if not (Path(path) / str(res.get("file"))).is_file():
        return f"{path}: the results file its integrity record names ({res.get('file')}) is absent: unchecked"
    return None


def cell_keys(run: Run) -> set[tuple[str, str]]:
    """The ``(model, method)`` cells a run computed (method "" = its model-scope metrics)."""
    return {(c["model"], c["method"]) for c in run.get("cells", [])}


# -- compatibility ----------------------------------------------------------------------------
def _first_diff(a: object, b: object, path: str = "") -> str | None:
    """The first key path where two JSON values differ, as ``path: a vs b`` (None if equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}{k}: {'absent' if k not in a else json.dumps(a[k])} here, " \
                       f"{'absent' if k not in b else json.dumps(b[k])} in the reference"
            d = _first_diff(a[k], b[k], f"{path}{k}.")
            if d:
                return d
        return None
    if a != b:
        return f"{path.rstrip('.') or 'value'}: {json.dumps(a)} here, {json.dumps(b)} in the reference"
    return None


def _cfg(run: Run, *keys: str) -> Any:
    node: Any = run.get("config", {})
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node


def _user_cards(run: Run) -> dict[str, dict[str, Any]]:
    """The cards (``versions.models``) of the run's own models (``config.user_models``)."""
    cards = run["versions"].get("models", {})
    return {m: cards[m] for m in sorted(_cfg(run, "user_models") or {}) if m in cards}


def _file(card: dict[str, Any]) -> str:
    """A user model's source file as messages name it: its digest and path."""
    return f"sha256 {str(card.get('file_sha256'))[:12]} ({(card.get('spec') or {}).get('source', '?')})"


def _weights(card: dict[str, Any]) -> str:
    """A user model's weights as messages name them: their digest and checkpoint."""
    ckpt = (card.get("spec") or {}).get("checkpoint")
    return f"sha256 {str(card.get('weights_sha256'))[:12]} ({f'checkpoint {ckpt!r}' if ckpt else 'the built weights'})"


def _identity(card: dict[str, Any]) -> str:
    return f"file {_file(card)}, weights {_weights(card)}"


#: the fields of a user model's card that only say where its files were (its identity is
#: their digests): two runs of the same files from other paths are comparable
_PATH_FIELDS = ("summary",)
_SPEC_PATH_FIELDS = ("source", "checkpoint")


def _without_paths(card: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in (card.get("spec") or {}).items() if k not in _SPEC_PATH_FIELDS}
    return {**{k: v for k, v in card.items() if k not in _PATH_FIELDS}, "spec": spec}


def user_model_difference(run: Run, ref: Run) -> str | None:
    """Why the user models (``snnxai run --model``, ``[models.NAME] source = ...``) of ``run``
    and ``ref`` are not the same models (None: they are). A model is its file and its
    weights, named by digest (``file_sha256``, ``weights_sha256`` of its card), not by path.
    A user model of ``run`` the reference lacks is refused when the reference probes user
    models of its own (a run of another model is another experiment); against a reference of
    registered models only it is a new model, placed among them like one."""
    mine, theirs = _user_cards(run), _user_cards(ref)
    for m, a in mine.items():
        if m not in theirs:
            if theirs:
                others = "; ".join(f"{n!r} ({_identity(c)})" for n, c in theirs.items())
                return (f"user model {m!r} ({_identity(a)}) is not in the reference, whose user models are "
                        f"{others}: compare runs of the same model")
            continue
        b = theirs[m]
        for key, what, show in (("file_sha256", "model file", _file), ("weights_sha256", "weights", _weights)):
            if a.get(key) != b.get(key):
                return f"user model {m!r} differs in its {what}: {show(a)} here, {show(b)} in the reference"
    return None


def first_difference(run: Run, ref: Run) -> str | None:
    """Why ``run`` cannot be compared with ``ref`` (None: it can), checked in the order
    dataset, suite version, seeds, target, samples, post-processing, user models, models,
    methods, metrics. Models, methods and metrics are checked where both runs configure them
    (a user model's card without the paths of its files: its digests identify it)."""
    dr, df = run["dataset"], ref["dataset"]
    for k in ("name", "split", "fingerprint"):
        if dr.get(k) != df.get(k):
            return f"dataset {k} differs: {dr.get(k)!r} here, {df.get(k)!r} in the reference"
    if run.get("suite_version") != ref.get("suite_version"):
        return (f"suite version differs: {run.get('suite_version')!r} here, "
                f"{ref.get('suite_version')!r} in the reference")
    for what, keys in (("seed (run.seed)", ("run", "seed")), ("model seed (run.model_seed)", ("run", "model_seed")),
                       ("target (run.target)", ("run", "target"))):
        a, b = _cfg(run, *keys), _cfg(ref, *keys)
        if a != b:
            return f"{what} differs: {a!r} here, {b!r} in the reference"
    ref_ids = set(ref["sample_ids"])
    extra = [s for s in run["sample_ids"] if s not in ref_ids]
    if extra:
        return (f"sample ids differ: sample {extra[0]} is not in the reference "
                f"({len(extra)} of {len(run['sample_ids'])} samples are not)")
    if not ref_ids.intersection(run["sample_ids"]):
        return "the runs share no samples"
    d = _first_diff(_cfg(run, "postprocess"), _cfg(ref, "postprocess"), "postprocess.")
    if d:
        return d
    d = user_model_difference(run, ref)
    if d:
        return d
    vr, vf = ({k: r["versions"].get(k) or {} for k in ("models", "methods", "metrics")} for r in (run, ref))
    user = set(_user_cards(run)) & set(_user_cards(ref))
    for m in sorted(set(vr["models"]) & set(vf["models"])):
        a, b = vr["models"][m], vf["models"][m]
        d = _first_diff(*((_without_paths(a), _without_paths(b)) if m in user else (a, b)), f"model {m!r} card ")
        if d:
            return d
        a, b = (r.get("checkpoints", {}).get(m, {}).get("sha256") for r in (run, ref))
        if a and b and a != b:
            return f"model {m!r} checkpoint differs: sha256 {a[:12]} here, {b[:12]} in the reference"
    for kind in ("methods", "metrics"):
        for k in [k for k in (_cfg(ref, kind) or {}) if k in (_cfg(run, kind) or {})]:
            what = f"{kind[:-1]} {k!r}"
            d = (_first_diff(vr[kind].get(k), vf[kind].get(k), f"{what} spec ")
                 or _first_diff(_cfg(run, kind, k), _cfg(ref, kind, k), f"{what} params ")
                 or (kind == "metrics" and _first_diff(_cfg(run, "limits", k), _cfg(ref, "limits", k),
                                                       f"{what} sample limit ")))
            if d:
                return d
    return None


def check_compatible(run: Run, ref: Run, name: str = "the run") -> None:
    """BenchError naming the first difference that makes ``run`` incomparable with ``ref``."""
    d = first_difference(run, ref)
    if d:
        raise BenchError(f"cannot compare {name} with reference {ref.get('run_id')}: {d}")


# -- merging and statistics -------------------------------------------------------------------
@dataclasses.dataclass
class Comparison:
    """A run's new entries placed among a reference's.

    rows: merged scalar rows (results schema) on the shared samples; model-scope rows
    relabelled to ``model = MODELS_FAMILY, method = <model>``. new: the ``(model, method)``
    entries (in those labels) that come from the run. summary / ranks: :mod:`bench.stats`
    of ``rows``. placement: one row per new entry and metric (see :func:`placement`)."""

    run: Run
    ref: Run
    rows: pd.DataFrame
    new: set[tuple[str, str]]
    higher: dict[str, bool]
    summary: pd.DataFrame
    ranks: pd.DataFrame
    placement: pd.DataFrame
    n_shared: int
    alpha: float
    #: why a run's results could not be checked (:func:`unchecked_reason`); shown on every output
    unchecked: tuple[str, ...] = ()


def _entries(df: pd.DataFrame) -> pd.DataFrame:
    """Model-scope rows (method "") become entries of the :data:`MODELS_FAMILY` column family."""
    df = df.copy()
    scope = (df["method"] == "").to_numpy()
    df.loc[scope, "method"] = df.loc[scope, "model"]
    df.loc[scope, "model"] = MODELS_FAMILY
    return df


def _new_entries(run: Run, ref: Run) -> set[tuple[str, str]]:
    new = cell_keys(run) - cell_keys(ref)
    return {(MODELS_FAMILY, m) if not meth else (m, meth) for m, meth in new}


def compare_runs(run_dir: str | Path, ref_dir: str | Path) -> Comparison:
    """Check, merge and rank (writes nothing); see the module doc."""
    import warnings

    run, ref = load_run(run_dir), load_run(ref_dir)
    check_compatible(run, ref, str(run_dir))
    unchecked = tuple(r for r in (unchecked_reason(ref_dir, ref), unchecked_reason(run_dir, run)) if r)
    for reason in unchecked:  # the outputs say it too (write_comparison)
        warnings.warn(reason, UserWarning, stacklevel=2)
    new_cells = cell_keys(run) - cell_keys(ref)
    if not new_cells:
        raise BenchError(f"{run_dir} holds no cell that reference {ref['run_id']} lacks: nothing to place")
    shared = set(run["sample_ids"]) & set(ref["sample_ids"])
    mine = stats.scalar_rows(read_results(run_dir))
    mine = mine[[(m, k) in new_cells for m, k in zip(mine["model"], mine["method"])]]
    theirs = stats.scalar_rows(read_results(ref_dir))
    rows = pd.concat([theirs, mine], ignore_index=True)
    rows = _entries(rows[rows["sample_id"].isin(shared)])
    if not set(mine["sample_id"]) & set(theirs["sample_id"]) & shared:
        raise BenchError(f"cannot compare {run_dir} with reference {ref['run_id']}: "
                         "their rows share no samples")
    higher = {k: bool(v["higher_is_better"])
              for r in (ref, run) for k, v in r["versions"].get("metrics", {}).items()}
    rep = ref["config"].get("report", {})
    summary = stats.summarize(rows, n_boot=rep.get("n_boot", 1000), ci=rep.get("ci", 0.95),
                              seed=int(ref.get("seed", 0)))
    ranks = stats.rank_methods(summary, higher)
    new = _new_entries(run, ref)
    alpha = float(rep.get("alpha", 0.05))
    return Comparison(run=run, ref=ref, rows=rows, new=new, higher=higher, summary=summary, ranks=ranks,
                      placement=placement(rows, summary, ranks, new, higher, alpha),
                      n_shared=len(shared), alpha=alpha, unchecked=unchecked)


PLACEMENT_COLUMNS = ["dataset", "model", "metric", "method", "higher_is_better", "rank", "n_entries",
                     "mean", "ci_lo", "ci_hi", "n", "better_than", "worse_than", "not_separated"]


def placement(rows: pd.DataFrame, summary: pd.DataFrame, ranks: pd.DataFrame, new: set[tuple[str, str]],
              higher: dict[str, bool], alpha: float) -> pd.DataFrame:
    """Per new entry and column (dataset, model, metric): its rank among the column's entries,
    mean and CI, and the entries it is significantly better / worse than (Wilcoxon signed-rank
    on the shared samples, Holm over the entry's comparisons in that column); each list
    best-ranked first, entries joined by ``;``."""
    col = ["dataset", "model", "metric"]
    pairs = [{"dataset": d, "model": m, "metric": k, "method_a": a, "method_b": b}
             for (d, m, k), g in ranks.groupby(col, sort=True)
             for a in g["method"] if (m, a) in new for b in g["method"] if b != a]
    pairs_df = pd.DataFrame(pairs, columns=[*col, "method_a", "method_b"])
    tests = stats.paired_tests(rows, pairs_df) if len(pairs_df) else pairs_df.assign(diff_mean=[], p=[])
    # Holm per new entry and column (the family of one placement), not over every new entry
    # of the column: a second submission in the same run must not weaken the first one's tests
    tests["p_holm"] = tests.groupby([*col, "method_a"], sort=False)["p"].transform(
        lambda p: pd.Series(stats.holm(p.to_numpy()), index=p.index))
    s = summary[summary["timestep"].isna() & summary["point"].isna()].set_index([*col, "method"])
    rank_of = ranks.set_index([*col, "method"])["rank"]
    recs = []
    for (d, m, k), g in ranks.groupby(col, sort=True):
        order = g.sort_values(["rank", "method"])["method"].tolist()
        for a in [x for x in order if (m, x) in new]:
            t = tests[(tests["dataset"] == d) & (tests["model"] == m) & (tests["metric"] == k)
                      & (tests["method_a"] == a)]
            sign = 1.0 if higher[k] else -1.0
            sig = t["p_holm"].to_numpy(float) < alpha
            up = sig & (t["diff_mean"].to_numpy(float) * sign > 0)
            down = sig & (t["diff_mean"].to_numpy(float) * sign < 0)
            by_rank = lambda mask: ";".join(sorted(t["method_b"][mask], key=lambda b: (rank_of[(d, m, k, b)], b)))
            c = s.loc[(d, m, k, a)]
            recs.append({"dataset": d, "model": m, "metric": k, "method": a, "higher_is_better": higher[k],
                         "rank": float(rank_of[(d, m, k, a)]), "n_entries": len(order), "mean": c["mean"],
                         "ci_lo": c["ci_lo"], "ci_hi": c["ci_hi"], "n": int(c["n"]),
                         "better_than": by_rank(up), "worse_than": by_rank(down),
                         "not_separated": by_rank(~sig)})
    return pd.DataFrame(recs, columns=PLACEMENT_COLUMNS)


# -- rendering --------------------------------------------------------------------------------
def report_data(cmp: Comparison, out: Path) -> ReportData:
    """A :class:`bench.report.data.ReportData` of the merged table, so that the leaderboard's
    own code (:func:`bench.report.leaderboard.boards`) renders the full columns."""
    from bench.report.data import ReportData

    ref, run = cmp.ref, cmp.run
    merged = json.loads(json.dumps(ref))
    for kind in ("methods", "metrics"):
        merged["versions"][kind] = {**run["versions"][kind], **ref["versions"][kind]}
        roles = merged.setdefault("roles", {}).setdefault(kind, {})
        for k, v in run.get("roles", {}).get(kind, {}).items():
            roles.setdefault(k, v)
        order = merged.setdefault("order", {}).setdefault(kind, list(ref["versions"][kind]))
        order += [k for k in run.get("order", {}).get(kind, run["versions"][kind]) if k not in order]
    merged["models"] = [*ref["models"], *(m for m in run["models"] if m not in ref["models"])]
    expl = cmp.summary[cmp.summary["method"] != ""]
    tests = stats.adjacent_tests(cmp.rows, expl, cmp.higher, cmp.alpha)
    return ReportData(run_dir=out, results=cmp.rows, run=merged, summary=cmp.summary, tests=tests,
                      ranks=cmp.ranks, agreement=pd.DataFrame())


def _label(board: Board, new: set[tuple[str, str]]) -> Board:
    """``board`` with its new entries named ``<name> (new)``."""
    lab = {m: m + NEW if (board.model, m) in new else m for m in board.methods}
    return dataclasses.replace(board, methods=[lab[m] for m in board.methods],
                               cells={(lab[m], k): v for (m, k), v in board.cells.items()},
                               mean_rank={lab.get(m, m): v for m, v in board.mean_rank.items()},
                               baselines={lab[m] for m in board.baselines})


def _rank_text(r: pd.Series) -> str:
    rank = f"{r['rank']:g}"
    return f"{rank} of {r['n_entries']}"


def placement_frame(cmp: Comparison) -> pd.DataFrame:
    """The placement table as shown (one row per new entry and column)."""
    from bench.report.leaderboard import ARROW, fmt_cell

    p = cmp.placement
    return pd.DataFrame({
        "model": p["model"], "metric": [f"{k} {ARROW[h]}" for k, h in zip(p["metric"], p["higher_is_better"])],
        "entry": p["method"], "rank": [_rank_text(r) for _, r in p.iterrows()],
        "mean [CI]": [fmt_cell(r) for r in p.to_dict("records")], "n": p["n"],
        "significantly better than": [s.replace(";", ", ") or "-" for s in p["better_than"]],
        "significantly worse than": [s.replace(";", ", ") or "-" for s in p["worse_than"]]})


def intro(cmp: Comparison) -> str:
    run, ref = cmp.run, cmp.ref
    ds = ref["dataset"]
    new = sorted({f"{m}/{e}" if m != MODELS_FAMILY else e for m, e in cmp.new})
    rep = ref["config"].get("report", {})
    return (f"{len(new)} new entries of run {run['run_id']} ({', '.join(new)}) placed among the entries of "
            f"reference {ref['run_id']} (suite {ref.get('suite')}, {_version(ref)}), on the "
            f"{cmp.n_shared} samples both hold of {ds['name']}/{ds['split']} (fingerprint {ds['fingerprint']}). "
            f"Mean [{round(100 * rep.get('ci', 0.95))}% bootstrap CI, {rep.get('n_boot', 1000)} resamples]; "
            "rank 1 = best (ties share the average rank). Significantly better / worse: Wilcoxon signed-rank "
            "on the shared samples, Holm-corrected over each new entry's comparisons in its column, "
            f"alpha {cmp.alpha}. Columns of the '{MODELS_FAMILY}' table rank the models on the model-scope "
            "metrics.")


def _version(run: Run) -> str:
    v = run.get("suite_version")
    return "no declared version" if v is None else f"version {v}"


def new_boards(cmp: Comparison) -> list[Board]:
    """The leaderboard's boards (:func:`bench.report.leaderboard.boards`) of the merged table
    that hold a new entry, new entries labelled."""
    from bench.report.leaderboard import boards

    return [_label(b, cmp.new) for b in boards(report_data(cmp, Path(".")))
            if any((b.model, m) in cmp.new for m in b.methods)]


def markdown(cmp: Comparison, command: str = "") -> str:
    from bench.report.leaderboard import DAGGER, board_markdown, frame_markdown

    parts = [f"# Compare: {cmp.run['run_id']} against {cmp.ref['run_id']}", ""]
    parts += [f"**Unchecked:** {u}." for u in cmp.unchecked] + ([""] if cmp.unchecked else [])
    parts += [intro(cmp), ""]
    if command:
        parts += [f"Produced by `{command}`.", ""]
    parts += ["## Placement of the new entries", "", frame_markdown(placement_frame(cmp)), ""]
    parts += ["## Full columns", "", f"The columns that hold a new entry, every entry, best mean rank "
              "first; **bold**: best per column; "
              f"{DAGGER}: significantly better than the next-ranked entry (as in the leaderboard).", ""]
    for b in new_boards(cmp):
        parts += [f"### {b.model} on {b.dataset}", "", board_markdown(b), ""]
    return "\n".join(parts)


def html_page(cmp: Comparison, command: str = "") -> str:
    from bench.report.html import CSS, board_html, esc, frame_html

    title = f"Compare: {cmp.run['run_id']} against {cmp.ref['run_id']}"
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>{esc(title)}</title><style>{CSS}</style></head><body>", f"<h1>{esc(title)}</h1>",
             *(f"<p class='warn'><b>Unchecked:</b> {esc(u)}.</p>" for u in cmp.unchecked),
             f"<p class='note'>{esc(intro(cmp))}</p>"]
    if command:
        parts.append(f"<p class='note'>Produced by <code>{esc(command)}</code>.</p>")
    parts += ["<h2>Placement of the new entries</h2>", frame_html(placement_frame(cmp)), "<h2>Full columns</h2>"]
    for b in new_boards(cmp):
        parts += [f"<h3>{esc(b.model)} on {esc(b.dataset)}</h3>", board_html(b)]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_comparison(cmp: Comparison, out: str | Path, command: str = "") -> Path:
    """Write ``compare.md``, ``compare.html`` and ``placement.csv`` into ``out``; returns ``out``."""
    from bench.store import write_atomic

    out = Path(out)
    md, page = markdown(cmp, command), html_page(cmp, command)   # everything rendered before a write
    # the table travels alone: each row says when a run's results were unchecked ("" when checked)
    csv = cmp.placement.assign(unchecked="; ".join(cmp.unchecked)).to_csv(index=False, float_format="%.6g")
    write_atomic(out / "compare.md", md)
    write_atomic(out / "compare.html", page)
    write_atomic(out / "placement.csv", csv)
    return out


# -- runs against a reference (snnxai run --reference) ----------------------------------------
def drop_reference_cells(plan: Plan, ref: Run) -> tuple[Plan, dict[str, Any]]:
    """``plan`` without the cells ``ref`` holds (they are not recomputed; ``compare`` takes
    them from the reference) and the record run.json keeps of it."""
    held = cell_keys(ref)
    keep = [c for c in plan.cells if (c.model, c.method) not in held]
    if not keep:
        # before "nothing to compute": a reference of another suite version or dataset holds the
        # same cell names but is not comparable at all, and that is the reason to give
        s = plan.suite
        early = {"suite_version": s.version, "dataset": {"name": s.data.dataset, "split": s.data.split},
                 "config": {"run": {"seed": s.run.seed, "model_seed": s.run.model_seed, "target": s.run.target}}}
        partial = {"suite_version": ref.get("suite_version"),
                   "dataset": {k: ref["dataset"].get(k) for k in ("name", "split")},
                   "config": {"run": {k: _cfg(ref, "run", k) for k in ("seed", "model_seed", "target")}}}
        d = _first_diff(early, partial)
        if d:
            raise BenchError(f"cannot compare this run with reference {ref['run_id']}: {d}")
        raise BenchError(f"every cell this run would compute is already in reference {ref['run_id']}; "
                         "nothing to compute")
    dropped = [c.record() for c in plan.cells if (c.model, c.method) in held]
    return dataclasses.replace(plan, cells=keep), {"run_id": ref["run_id"], "cells_not_recomputed": dropped}
