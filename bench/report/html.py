"""One self-contained ``report.html``: tables inline, figures embedded (base64), a table of
contents, tables that scroll sideways instead of widening the page, and columns sorted by a
click (a few lines of inline script; nothing is loaded from elsewhere)."""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.data import ReportData
from bench.report.leaderboard import ARROW, DAGGER, Board, decorate, fmt_cell

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1250px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.0em}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:center;white-space:nowrap}
th{background:#f4f4f4}td.name{text-align:left}tr.baseline td{color:#666;font-style:italic}
td.best{font-weight:bold;background:#eef6ee}img{max-width:100%;margin:.5em 0;display:block}
.meta td{text-align:left}.note{color:#555;font-size:.85em}
.warn{border:2px solid #c0392b;background:#fdecea;padding:.5em 1em;margin:1em 0}
.ok{border:1px solid #7a7;background:#eef6ee;padding:.5em 1em;margin:1em 0;font-size:.9em}
.scroll{overflow-x:auto;max-width:100%}th.sort{cursor:pointer}th.sort:hover{background:#e6e6e6}
nav.toc{font-size:.85em;columns:2}nav.toc a{display:block;text-decoration:none}
"""

#: click a header cell to sort the table's rows by that column (numbers by value: a cell is
#: read from its first number, "-" sorts last; click again to reverse). Plain ES5, no library.
SORT_JS = """
document.querySelectorAll("table").forEach(function(t){
  var head=t.rows[0]; if(!head||!head.querySelector("th")||t.rows.length<3)return;
  Array.prototype.forEach.call(head.cells,function(th,col){
    th.className+=" sort"; th.title="sort by this column";
    th.addEventListener("click",function(){
      var rows=Array.prototype.slice.call(t.rows,1), up=th.getAttribute("data-up")!=="1";
      Array.prototype.forEach.call(head.cells,function(h){h.removeAttribute("data-up");});
      if(up)th.setAttribute("data-up","1");
      function key(r){var s=r.cells[col]?r.cells[col].textContent.trim():"";
        var v=parseFloat(s); return isNaN(v)?{n:false,s:s}:{n:true,v:v};}
      rows.sort(function(a,b){var x=key(a),y=key(b);
        if(x.n!==y.n)return x.n?-1:1;
        var c=x.n?x.v-y.v:x.s.localeCompare(y.s); return up?c:-c;});
      rows.forEach(function(r){r.parentNode.appendChild(r);});
    });
  });
});
"""


def esc(x: object) -> str:
    return html.escape(str(x))


def img(path: Path, alt: str) -> str:
    """A figure file embedded in the page. Lossless WebP where Pillow can write it: the same
    pixels in about a fifth fewer bytes than the PNG (the figures are most of the page)."""
    from PIL import Image, features

    raw, kind = path.read_bytes(), "png"
    if features.check("webp"):
        buf = io.BytesIO()
        with Image.open(io.BytesIO(raw)) as im:
            im.save(buf, format="WEBP", lossless=True, method=2)
        if buf.tell() < len(raw):
            raw, kind = buf.getvalue(), "webp"
    return f'<img alt="{esc(alt)}" loading="lazy" src="data:image/{kind};base64,{base64.b64encode(raw).decode()}">'


def slug(title: str, taken: set[str]) -> str:
    """An HTML id for a section title, unique within the page."""
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    out, i = base, 2
    while out in taken:
        out, i = f"{base}-{i}", i + 1
    taken.add(out)
    return out


def scrollable(page: str) -> str:
    """Wrap every table in a box that scrolls sideways: a wide leaderboard never widens the page."""
    return page.replace("<table", '<div class="scroll"><table').replace("</table>", "</table></div>")


def _td(c: dict | None) -> str:
    """A leaderboard cell: bold background if best, dagger if better than the next method."""
    cls = ' class="best"' if c and c["best"] else ""
    return f"<td{cls}>{decorate(c, esc(fmt_cell(c)), '{}', f' {DAGGER}')}</td>"


def board_html(b: Board) -> str:
    """The leaderboard of one (dataset, model) as an HTML table (baselines in gray italics)."""
    head = "".join(f"<th>{esc(k)} {ARROW[b.higher[k]]}</th>" for k in b.metrics)
    rows = []
    for m in b.methods:
        tds = "".join(_td(b.cells.get((m, k))) for k in b.metrics)
        rank = b.mean_rank.get(m, np.nan)
        cls = ' class="baseline"' if m in b.baselines else ""
        rank_s = f"{rank:.2f}" if np.isfinite(rank) else "-"
        rows.append(f'<tr{cls}><td class="name">{esc(m)}</td>{tds}<td>{rank_s}</td></tr>')
    return f"<table><tr><th>method</th>{head}<th>mean rank</th></tr>{''.join(rows)}</table>"


def frame_html(df: pd.DataFrame) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "-" if not np.isfinite(v) else f"{v:.3f}"
        return "-" if v is None else esc(v)

    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(v)}</td>" for v in r) + "</tr>"
                   for r in df.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


def provenance_html(rd: ReportData) -> str:
    run = rd.run
    git = run.get("git", {})
    timing = run.get("timing", {})
    items = [("run id", run["run_id"]), ("config hash", run["config_hash"]),
             ("command", run.get("command") or "-"),
             ("git commit", f"{git.get('commit')} {'(dirty)' if git.get('dirty') else ''}"),
             ("dataset", f"{run['dataset']['name']}/{run['dataset']['split']} fingerprint "
                         f"{run['dataset']['fingerprint']}, {run['dataset']['n_samples']} samples"),
             ("device", run.get("device", {}).get("device")), ("seed", run.get("seed")),
             ("wall time", f"{timing.get('wall_s', '-')} s; stages: " + ", ".join(
                 f"{k} {v:.1f}s" for k, v in timing.get("stages_s", {}).items())),
             ("packages", ", ".join(f"{k} {v}" for k, v in run.get("packages", {}).items() if v))]
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in items)
    return f'<table class="meta">{rows}</table>'


def cost_frame(rd: ReportData) -> pd.DataFrame:
    """Explanation cost per (model, method): wall time and passes per sample."""
    cost = pd.DataFrame(rd.run.get("cost", []))
    if not len(cost):
        return cost
    c = cost[cost["stage"] == "explain"].groupby(["model", "method"], as_index=False).agg(
        wall_s=("wall_s", "sum"), samples=("samples", "sum"), backwards=("backwards", "sum"),
        n=("n_samples", "sum"))
    c["forward_samples_per_sample"] = c["samples"] / c["n"]
    c["backward_calls"] = c["backwards"]
    s = cost[cost["stage"] == "score"].groupby(["model", "method"], as_index=False)["wall_s"].sum()
    c = c.merge(s.rename(columns={"wall_s": "score_wall_s"}), on=["model", "method"], how="left")
    return c[["model", "method", "wall_s", "forward_samples_per_sample", "backward_calls", "score_wall_s"]]


def render(rd: ReportData, sections: list[tuple[str, str, list[tuple[str, Path]]]], intro: str,
           banner: str = "") -> str:
    """``sections``: (title, html body, [(caption, png path)]); ``banner``: HTML shown right
    under the intro (the attack audit's warnings)."""
    skipped = pd.DataFrame(rd.run.get("skipped", []), columns=["model", "method", "metric", "reason"])
    tail = []
    if len(skipped):
        tail.append(("Skipped", frame_html(skipped.fillna("").drop_duplicates(["method", "metric", "reason"])), []))
    cost = cost_frame(rd)
    if len(cost):
        tail.append(("Cost of explanations", frame_html(cost), []))
    tail.append(("Provenance", provenance_html(rd), []))
    taken: set[str] = set()
    ids = [(slug(title, taken), title, body, figs) for title, body, figs in [*sections, *tail]]
    toc = "".join(f'<a href="#{i}">{esc(title)}</a>' for i, title, _, _ in ids)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>snn-xai-bench report: {esc(rd.run['run_id'])}</title><style>{CSS}</style></head><body>",
             f"<h1>snn-xai-bench: {esc(rd.run['suite'])}</h1>", f"<p class='note'>{intro}</p>", banner,
             f"<nav class='toc'><b>Contents</b>{toc}</nav>"]
    for i, title, body, figs in ids:
        parts.append(f"<h2 id='{i}'>{esc(title)}</h2>{body}")
        for cap, p in figs:
            parts.append(f"<h3>{esc(cap)}</h3>{img(p, cap)}")
    parts.append(f"<script>{SORT_JS}</script></body></html>")
    return scrollable("\n".join(parts))
