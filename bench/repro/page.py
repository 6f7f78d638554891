"""A reproduction page: markdown text, its comparisons table and its figure.

A page is built as a list of markdown lines (:class:`Page`) and written with
:func:`write_page`; figures go to ``figures/<page>.png`` beside it (matplotlib, the report's
style: :func:`bench.report.figures.setup_style`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bench.repro.measure import Comparison
from bench.repro.verdict import RULE, combine
from bench.store import write_atomic


@dataclasses.dataclass
class Page:
    """One claim's page. ``slug``: file name (``<slug>.md``); ``verdict``: the headline verdict
    ("" = none, e.g. a descriptive page)."""

    slug: str
    title: str
    verdict: str = ""
    lines: list[str] = dataclasses.field(default_factory=list)
    figure: Figure | None = None
    missing: str = ""     # why the page could not be measured ("" = it was)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)


def fmt(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if np.isfinite(v) else "-"


def fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "-"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def comparison_table(comps: list[Comparison]) -> list[str]:
    """Markdown rows of comparisons (condition, a, b, means, diff with CI, p, Holm p, outcome)."""
    out = ["| condition | a | b | n | mean a | mean b | a - b [95% CI] | p | p (Holm) | outcome |",
           "|---|---|---|---:|---:|---:|---|---:|---:|---|"]
    for c in comps:
        out.append(f"| {c.label} | {c.a} | {c.b} | {c.n} | {fmt(c.mean_a)} | {fmt(c.mean_b)} | "
                   f"{c.diff.text()} | {fmt_p(c.p)} | {fmt_p(c.p_holm)} | {c.outcome} |")
    return out


def verdict_block(comps: list[Comparison], claim_side: str) -> tuple[str, list[str]]:
    """The verdict of ``comps`` and the lines that state it, the rule and the conditions."""
    v = combine([c.outcome for c in comps])
    held = [c.label for c in comps if c.outcome == "for"]
    against = [c.label for c in comps if c.outcome == "against"]
    lines = [f"**Verdict: {v}** ({claim_side}).", "",
             f"Rule: {RULE}", ""]
    lines.append(f"- holds ({len(held)} of {len(comps)}): " + ("; ".join(held) if held else "nowhere"))
    lines.append(f"- reversed ({len(against)}): " + ("; ".join(against) if against else "nowhere"))
    rest = len(comps) - len(held) - len(against)
    lines.append(f"- no detectable difference: {rest}")
    return v, lines


def write_page(page: Page, out: Path) -> Path:
    """``out/<slug>.md`` (and ``out/figures/<slug>.png`` when the page has a figure)."""
    out.mkdir(parents=True, exist_ok=True)
    text = [f"# {page.title}", ""]
    if page.missing:
        text += [f"**Not measured:** {page.missing}", ""]
    if page.verdict:
        text += [f"Headline verdict: **{page.verdict}**", ""]
    text += page.lines
    if page.figure is not None:
        (out / "figures").mkdir(exist_ok=True)
        path = out / "figures" / f"{page.slug}.png"
        page.figure.savefig(path, dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(page.figure)
        text += ["", f"![{page.title}](figures/{page.slug}.png)"]
    p = out / f"{page.slug}.md"
    write_atomic(p, "\n".join(text).rstrip() + "\n")
    return p


def write_index(pages: list[Page], out: Path, title: str, intro: list[str]) -> Path:
    """``out/index.md``: one line per page with its verdict (missing pages say why)."""
    lines = [f"# {title}", "", *intro, "",
             "| # | page | verdict |", "|---:|---|---|"]
    for i, p in enumerate(pages, 1):
        v = p.verdict or ("not measured" if p.missing else "descriptive")
        lines.append(f"| {i} | [{p.title}]({p.slug}.md) | {v} |")
    path = out / "index.md"
    write_atomic(path, "\n".join(lines) + "\n")
    return path
