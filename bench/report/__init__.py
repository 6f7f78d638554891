"""Reports: leaderboards (Markdown, CSV, LaTeX), figures (PNG) and one self-contained HTML page.

:func:`build_report` is a pure function of a run directory (``results.csv`` + ``run.json`` +
the saved example maps); ``snnxai report RUN_DIR`` calls it, and so does the end of
``snnxai run``. Output layout::

    report/leaderboard.md  leaderboard.csv  leaderboard.tex  report.html  figures/*.png
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from bench.report import figures, gallery, leaderboard
from bench.report.data import ReportData, load_report_data
from bench.report.html import board_html, frame_html, render
from bench.results import write_atomic


def _save(fig: object, path: Path, out: list[tuple[str, Path]], caption: str) -> None:
    if fig is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=figures.DPI, metadata={"Software": None})
    plt.close(fig)
    out.append((caption, path))


def model_section(rd: ReportData, board: leaderboard.Board, figdir: Path, ex: dict) -> tuple:
    """The leaderboard and figures of one (dataset, model)."""
    d, m = board.dataset, board.model
    figs: list[tuple[str, Path]] = []
    tag = f"{d}_{m}"
    _save(figures.fig_points(rd, d, m), figdir / f"points_{tag}.png", figs, "Scores per metric")
    for cat in ("faithfulness", "robustness", "sanity"):
        _save(figures.fig_curves(rd, d, m, cat), figdir / f"curves_{cat}_{tag}.png", figs,
              {"faithfulness": "Deletion and insertion curves", "robustness": "Explanation robustness vs epsilon",
               "sanity": "Sanity: similarity under cascading randomization"}[cat])
    _save(figures.fig_timesteps(rd, d, m), figdir / f"timesteps_{tag}.png", figs, "Localization per time step")
    _save(figures.fig_ranks(rd, d, m), figdir / f"ranks_{tag}.png", figs, "Rank heatmap")
    _save(figures.fig_agreement(rd, d, m), figdir / f"agreement_{tag}.png", figs, "Metric agreement")
    _save(gallery.fig_gallery(rd, m, ex), figdir / f"gallery_{tag}.png", figs, "Gallery")
    _save(gallery.fig_steps(rd, m, ex), figdir / f"steps_{tag}.png", figs, "Maps per time step")
    return (f"{m} on {d}", board_html(board), figs)


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default ``run_dir/report``); returns it."""
    rd = load_report_data(run_dir)
    out_dir = Path(out) if out else Path(run_dir) / "report"
    figdir = out_dir / "figures"
    figures.setup_style()
    write_atomic(out_dir / "leaderboard.md", leaderboard.markdown(rd, rd.run.get("command", "")))
    write_atomic(out_dir / "leaderboard.csv", leaderboard.tidy(rd).to_csv(index=False, float_format="%.6g"))
    write_atomic(out_dir / "leaderboard.tex", leaderboard.latex(rd))
    sections = []
    models = leaderboard.model_table(rd)
    overview: list[tuple[str, Path]] = []
    for d in sorted(rd.results["dataset"].unique()):
        _save(figures.fig_model_curves(rd, d), figdir / f"models_{d}.png", overview, f"Models on {d}")
    if len(models) or overview:
        sections.append(("Models", frame_html(models) if len(models) else "", overview))
    ex = rd.examples()
    sections += [model_section(rd, b, figdir, ex) for b in leaderboard.boards(rd)]
    intro = (f"{rd.run['dataset']['n_samples']} samples of {rd.run['dataset']['name']}; "
             f"mean [95% bootstrap CI]; bold: best per column; {leaderboard.DAGGER}: significantly "
             "better than the next-ranked method (Wilcoxon signed-rank, Holm); baselines in italics.")
    write_atomic(out_dir / "report.html", render(rd, sections, intro))
    return out_dir
