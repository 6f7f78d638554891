"""Reports: leaderboards (Markdown, CSV, LaTeX), figures (PNG) and one self-contained HTML page.

:func:`build_report` is a pure function of a run directory (``results.csv`` + ``run.json`` +
the saved example maps); ``snnxai report RUN_DIR`` calls it, and so does the end of
``snnxai run``. Output layout::

    report/leaderboard.md  leaderboard.csv  leaderboard.tex  report.html  figures/*.png
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt

from bench.report import figures, gallery, leaderboard
from bench.report.data import ReportData, load_report_data
from bench.report.html import board_html, frame_html, render
from bench.results import write_atomic

#: (file stem, caption, figure function of (report data, dataset)), in report order
DATASET_FIGURES = (
    ("points", "Scores per metric", figures.fig_points),
    ("curves_faithfulness", "Deletion and insertion curves",
     lambda rd, d: figures.fig_curves(rd, d, "faithfulness")),
    ("timesteps", "Localization per time step", figures.fig_timesteps),
    ("curves_robustness", "Explanation stability under attack vs epsilon",
     lambda rd, d: figures.fig_curves(rd, d, "robustness")),
    ("curves_sanity", "Sanity: similarity to the maps of cascadingly randomized models",
     lambda rd, d: figures.fig_curves(rd, d, "sanity")),
    ("ranks", "Method ranks", figures.fig_ranks),
    ("agreement", "Metric agreement (Kendall tau)", figures.fig_agreement),
)


def _save(fig: object, path: Path, out: list[tuple[str, Path]], caption: str) -> None:
    """Write ``fig`` as a 256-colour PNG (a quarter of the RGBA size; the committed report
    embeds every figure twice, as a file and in report.html)."""
    if fig is None:
        return
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=figures.DPI)
    plt.close(fig)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(256, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    write_atomic(path, buf.getvalue())
    out.append((caption, path))


def dataset_sections(rd: ReportData, dataset: str, figdir: Path, ex: dict) -> list[tuple]:
    """Models table, leaderboards and figures of one dataset, as HTML sections."""
    overview: list[tuple[str, Path]] = []
    _save(figures.fig_model_curves(rd, dataset), figdir / f"models_{dataset}.png", overview,
          "Accuracy under attack and the attack audit")
    models = leaderboard.model_table(rd)
    sections = [("Models", frame_html(models) if len(models) else "", overview)]
    sections += [(f"Leaderboard: {b.model} on {b.dataset}", board_html(b), [])
                 for b in leaderboard.boards(rd) if b.dataset == dataset]
    figs: list[tuple[str, Path]] = []
    for stem, caption, fn in DATASET_FIGURES:
        _save(fn(rd, dataset), figdir / f"{stem}_{dataset}.png", figs, caption)
    for model in rd.run.get("models", []):
        _save(gallery.fig_gallery(rd, model, ex), figdir / f"gallery_{dataset}_{model}.png", figs,
              f"Gallery: {model}")
    _save(gallery.fig_steps(rd, ex), figdir / f"steps_{dataset}.png", figs, "Maps per time step")
    sections.append(("Figures", "", figs))
    return sections


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default ``run_dir/report``); returns it."""
    rd = load_report_data(run_dir)
    out_dir = Path(out) if out else Path(run_dir) / "report"
    figdir = out_dir / "figures"
    figures.setup_style()
    write_atomic(out_dir / "leaderboard.md", leaderboard.markdown(rd, rd.run.get("command", "")))
    write_atomic(out_dir / "leaderboard.csv", leaderboard.tidy(rd).to_csv(index=False, float_format="%.6g"))
    write_atomic(out_dir / "leaderboard.tex", leaderboard.latex(rd))
    ex = rd.examples()
    sections = [s for d in sorted(rd.results["dataset"].unique()) for s in dataset_sections(rd, d, figdir, ex)]
    intro = (f"{rd.run['dataset']['n_samples']} samples of {rd.run['dataset']['name']}; "
             f"mean [95% bootstrap CI]; bold: best per column; {leaderboard.DAGGER}: significantly "
             "better than the next-ranked method (Wilcoxon signed-rank, Holm); baselines in italics.")
    write_atomic(out_dir / "report.html", render(rd, sections, intro))
    return out_dir
