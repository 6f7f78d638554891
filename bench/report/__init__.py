"""Reports: leaderboards (Markdown, CSV, LaTeX), figures (PNG) and one self-contained HTML page.

:func:`build_report` is a pure function of a run directory (``results.csv`` + ``run.json`` +
the saved example maps); ``snnxai report RUN_DIR`` calls it, and so does the end of
``snnxai run``. Output layout::

    report/leaderboard.md  leaderboard.csv  leaderboard.tex  report.html  figures/*.png
           power.csv  (separated method pairs per model and metric: bench.report.power)
           audit.csv  paired_stability.csv   (only when the run has attack metrics)
           .report-files.json   the files this build wrote (see below)

``--out`` may name a folder that holds the user's own files: a build replaces only the files it
writes, and removes a file an earlier build wrote and this one did not (a stale figure, an
audit table the run no longer has) only when the earlier build's ``.report-files.json`` lists it.
A file the report did not write is never deleted. Names from the run folder (datasets, models)
become figure file names, so each must be one safe file name (:func:`bench.store.check_name`),
checked before anything is written.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from bench.report import figures, filmstrip, gallery, leaderboard, power, robustness, temporal
from bench.report.data import ReportData, load_report_data
from bench.report.html import board_html, esc, frame_html, render
from bench.store import check_name, unsafe_name, write_atomic

#: (file stem, caption, figure function of (report data, dataset)), in report order
DATASET_FIGURES = (
    ("points", "Scores per metric", figures.fig_points),
    ("curves_faithfulness", "Deletion and insertion curves",
     lambda rd, d: figures.fig_curves(rd, d, "faithfulness")),
    ("timesteps", "Scores per time step", figures.fig_timesteps),
    ("curves_sanity", "Sanity: similarity to the maps of cascadingly randomized models",
     lambda rd, d: figures.fig_curves(rd, d, "sanity")),
    ("ranks", "Method ranks", figures.fig_ranks),
    ("agreement", "Metric agreement (Kendall tau)", figures.fig_agreement),
)
#: categories whose curves have a figure of their own (above, or in the robustness section)
_OWN_CURVES = ("faithfulness", "sanity", "robustness")


def dataset_figures(rd: ReportData) -> list[tuple[str, str, Callable[[ReportData, str], Figure | None]]]:
    """:data:`DATASET_FIGURES` plus, before the ranks, the curves of every other category of
    the run (e.g. a new metric category): nothing a run measures goes undrawn."""
    other = [(f"curves_{c}", f"{c} curves", functools.partial(figures.fig_curves, category=c))
             for c in rd.categories() if c not in _OWN_CURVES]
    at = [stem for stem, _, _ in DATASET_FIGURES].index("ranks")
    return [*DATASET_FIGURES[:at], *other, *DATASET_FIGURES[at:]]


def _save(fig: object, path: Path, out: list[tuple[str, Path]], caption: str) -> None:
    """Write ``fig`` as a 256-colour PNG (a quarter of the RGBA size; the committed report
    embeds every figure twice, as a file and in report.html)."""
    if fig is None:
        return
    check_name(path.name, "figure file")  # names from the run folder: never a path that leaves figures/
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=figures.DPI)
    plt.close(fig)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(256, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    write_atomic(path, buf.getvalue())
    out.append((caption, path))


def audit_flags(table: pd.DataFrame, alpha: float, success: dict[str, str | None]) -> frozenset:
    """``(model, metric, point)`` where the audit found the transfer or noise attack
    significantly stronger than the white-box one (marked in the attack figure); ``success``:
    the success-rate metric of each attack."""
    return frozenset((r.model, success[other], r.point)
                     for r in table.itertuples(index=False) for other in ("transfer", "noise")
                     if getattr(r, f"p_{other}") < alpha)


def robustness_section(rd: ReportData, dataset: str, figdir: Path, ex: dict, table: pd.DataFrame,
                       paired: pd.DataFrame) -> tuple | None:
    """Audit table, paired stability tables and the robustness figures of one dataset
    (None when the run holds none of them)."""
    table = table[table["dataset"] == dataset]
    body = []
    if len(table):
        body += [f"<h3>Attack audit</h3><p class='note'>{esc(robustness.AUDIT_NOTE)}</p>",
                 frame_html(robustness.audit_display(table))]
    groups = robustness.paired_groups(paired[paired["dataset"] == dataset])
    if groups:
        body.append(f"<h3>Paired stability under attack</h3><p class='note'>{esc(robustness.paired_note(rd))}</p>")
    for g in groups:
        body += [f"<h4>{esc(robustness.paired_title(g))}</h4>", frame_html(robustness.paired_display(g))]
    figs: list[tuple[str, Path]] = []
    flags = audit_flags(table, robustness.alpha(rd), robustness.audit_metrics(rd).success)
    _save(figures.fig_model_curves(rd, dataset, flags), figdir / f"models_{dataset}.png", figs,
          "Accuracy under attack and attack success rates (white-box, transfer, noise) vs epsilon")
    _save(figures.fig_curves(rd, dataset, "robustness"), figdir / f"curves_robustness_{dataset}.png", figs,
          "Explanation stability under attack vs epsilon")
    _save(figures.fig_stability_steps(rd, dataset), figdir / f"stability_steps_{dataset}.png", figs,
          "Stability of the per-time-step maps under attack")
    attacked = rd.attacked()
    for model in gallery.attack_gallery_models(rd, ex):
        _save(gallery.fig_attack_gallery(rd, model, ex, attacked), figdir / f"gallery_attack_{dataset}_{model}.png",
              figs, f"Clean vs attacked: {model}")
    if not body and not figs:
        return None
    return ("Robustness", "".join(body), figs)


def dataset_sections(rd: ReportData, dataset: str, figdir: Path, ex: dict, table: pd.DataFrame,
                     paired: pd.DataFrame) -> list[tuple]:
    """Models table, leaderboards, robustness and figures of one dataset, as HTML sections."""
    models = leaderboard.model_table(rd)
    sections = [("Models", frame_html(models) if len(models) else "", [])]
    sections += [(f"Leaderboard: {b.model} on {b.dataset}", board_html(b), [])
                 for b in leaderboard.boards(rd) if b.dataset == dataset]
    robust = robustness_section(rd, dataset, figdir, ex, table, paired)
    sections += [robust] if robust else []
    figs: list[tuple[str, Path]] = []
    for stem, caption, fn in dataset_figures(rd):
        _save(fn(rd, dataset), figdir / f"{stem}_{dataset}.png", figs, caption)
    for model in rd.run.get("models", []):
        _save(gallery.fig_gallery(rd, model, ex), figdir / f"gallery_{dataset}_{model}.png", figs,
              f"Gallery: {model}")
    _save(gallery.fig_steps(rd, ex), figdir / f"steps_{dataset}.png", figs, "Maps per time step")
    for j, sid in enumerate(filmstrip.example_ids(ex)):  # time-varying inputs only
        _save(filmstrip.fig_filmstrip(rd, ex, j), figdir / f"filmstrip_{dataset}_{sid}.png", figs,
              f"Filmstrip: sample {sid} over time")
    sections.append(("Figures", "", figs))
    return sections


#: the list of files a build wrote, relative to the report folder (what a later build may remove)
FILES = ".report-files.json"


def _written_before(out_dir: Path) -> set[Path]:
    """The files an earlier build of ``out_dir`` recorded in :data:`FILES` (empty when none). An
    entry is kept only if it is a file this module could have written -- a top-level file or
    ``figures/<name>.png`` -- so a planted list cannot make a build delete anything else."""
    try:
        listed = json.loads((out_dir / FILES).read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    kept = set()
    for rel in listed if isinstance(listed, list) else []:
        parts = rel.split("/") if isinstance(rel, str) else []
        if (len(parts) == 1 or (len(parts) == 2 and parts[0] == "figures" and parts[1].endswith(".png"))) \
                and not any(unsafe_name(x) for x in parts):
            kept.add(out_dir.joinpath(*parts))
    return kept


def _check_names(rd: ReportData) -> None:
    """Every name of the run that becomes part of a figure's file name is one safe file name."""
    for d in rd.results["dataset"].unique():
        check_name(str(d), "dataset name in results")
    for m in rd.run.get("models", []):
        check_name(str(m), "model name in run.json")


def build_report(run_dir: str | Path, out: str | Path | None = None,
                 log: Callable[[str], None] = lambda line: None) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default ``run_dir/report``); returns it.
    ``log``: called with a line as each stage starts (``snnxai report`` prints them)."""
    rd = load_report_data(run_dir, log)  # damaged or missing files fail here, before any line
    _check_names(rd)
    ex = rd.examples()   # the example files are read (and a damaged one refused) before any write
    rd.attacked()
    final = Path(out) if out else Path(run_dir) / "report"
    before = _written_before(final)
    # the build writes into a staging folder beside the report and moves its files into place
    # at the end (renames on one file system: no space needed), so a build that fails half-way
    # (a full disk, an interrupt) leaves the earlier report as it was and no partial one
    out_dir = final.parent / f".{final.name}.partial"
    shutil.rmtree(out_dir, ignore_errors=True)
    try:
        written = _build_into(rd, ex, out_dir, log)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    placed = set()
    for p in sorted(written):
        target = final / p.relative_to(out_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, target)
        placed.add(target)
    shutil.rmtree(out_dir, ignore_errors=True)
    # a report rebuilt in place must not keep what an earlier build wrote and this one did not
    # (a stale figure, the tables of an earlier run); anything else in the folder is the user's
    for stale in before - placed:
        stale.unlink(missing_ok=True)
    write_atomic(final / FILES, json.dumps(
        {"files": sorted(p.relative_to(final).as_posix() for p in placed)}, indent=1) + "\n")
    return final


def _build_into(rd: ReportData, ex: dict, out_dir: Path, log: Callable[[str], None]) -> set[Path]:
    """Write every file of the report into ``out_dir``; returns their paths."""
    written: set[Path] = set()

    def put(path: Path, data: str | bytes) -> None:
        write_atomic(path, data)
        written.add(path)

    figdir = out_dir / "figures"
    figures.setup_style()
    table, warns, paired = robustness.audit_frame(rd), robustness.warnings(rd), robustness.paired_frame(rd)
    n_boot = rd.run["config"].get("report", {}).get("n_boot", 1000)
    step_metrics = rd.over_time_metrics("step")
    steps = temporal.step_table(rd.results, step_metrics, n_boot)
    tracking = temporal.tracking_table(rd.results, rd.over_time_metrics("lag"), rd.over_time_metrics("residual"), n_boot)
    put(out_dir / "leaderboard.md", leaderboard.markdown(
        rd, rd.run.get("command", ""),
        robustness.markdown(rd, table, warns, paired) + temporal.markdown(steps, tracking, step_metrics)))
    put(out_dir / "leaderboard.csv", leaderboard.tidy(rd).to_csv(index=False, float_format="%.6g"))
    put(out_dir / "leaderboard.tex", leaderboard.latex(rd))
    tables = (("audit.csv", table, robustness.has_audit(rd)), ("paired_stability.csv", paired, len(paired)),
              ("temporal_steps.csv", steps, len(steps)), ("temporal_tracking.csv", tracking, len(tracking)))
    for name, frame, keep in tables:
        if keep:
            put(out_dir / name, frame.to_csv(index=False, float_format="%.6g"))
    alpha = rd.run["config"].get("report", {}).get("alpha", 0.05)
    power_frame = power.power_table(rd.results, rd.summary, alpha, rd.headline_metrics())
    put(out_dir / "power.csv", power_frame.to_csv(index=False, float_format="%.6g"))
    sections = []
    for d in sorted(rd.results["dataset"].unique()):
        log(f"report: figures of {d}")
        sections += dataset_sections(rd, d, figdir, ex, table, paired)
    if len(steps) or len(tracking):  # per-step results: summarized over the steps, and tracking
        body = f"<p class='note'>{esc(temporal.NOTE)}</p>" + "".join(
            frame_html(f) for f in (temporal.display(steps, step_metrics), tracking.drop(columns="dataset")) if len(f))
        sections.insert(0, ("Over time", body, []))
    power_head = power.headline(power_frame, rd.headline_metrics())
    if len(power_head):  # the headline of a leaderboard: how many method pairs it tells apart
        sections.insert(0, ("Discriminative power", f"<p class='note'>{esc(power.NOTE)}</p>"
                            + frame_html(power_head), []))
    intro = (f"{rd.run['dataset']['n_samples']} samples of {rd.run['dataset']['name']}; "
             f"mean [95% bootstrap CI]; bold: best per column; {leaderboard.DAGGER}: significantly "
             "better than the next-ranked method (Wilcoxon signed-rank, Holm); baselines in italics.")
    log("report: report.html")
    put(out_dir / "report.html", render(rd, sections, intro, robustness.warning_html(rd, warns)))
    written |= {p for _, _, figs in sections for _, p in figs}
    return written
