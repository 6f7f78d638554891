"""report.html as a reader meets it: a table of contents linking every section, tables that
scroll sideways instead of widening the page, sortable columns, a size budget, and (when a
Chromium is installed) a real render: no table past the viewport, no console error, and a
click on a header sorts the rows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from test_report import run_json, synthetic_rows

from bench.report import build_report
from bench.report.html import scrollable, slug
from bench.store.results import write_results

#: the default suite's report.html must stay under this many bytes per method it shows (its
#: figures grow with the methods: 1.9 MB for 12 methods, when an earlier layout took 2.2 MB)
BUDGET_PER_METHOD = 160_000
N_WIDE = 12  # metrics added to the hand-built run: a leaderboard far wider than a laptop screen


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-built run of test_report plus many long-named metrics, reported."""
    d = tmp_path_factory.mktemp("wide")
    rows = synthetic_rows()
    loc = rows[rows["metric"] == "loc"]
    extra = [loc.assign(metric=f"localization_metric_with_a_long_name_{i}",
                        value=loc["value"] * (1 + i / 10)) for i in range(N_WIDE)]
    write_results(pd.concat([rows, *extra], ignore_index=True), d / "results.csv")
    run = run_json()
    meta = run["versions"]["metrics"]["loc"]
    run["versions"]["metrics"].update({f"localization_metric_with_a_long_name_{i}": meta for i in range(N_WIDE)})
    (d / "run.json").write_text(json.dumps(run))
    return build_report(d) / "report.html"


def test_contents_link_every_section(wide_report):
    html = wide_report.read_text()
    ids = re.findall(r"<h2 id='([^']+)'>", html)
    toc = re.findall(r'<a href="#([^"]+)">', html)
    assert toc == ids and len(set(ids)) == len(ids)
    for model in ("snn", "ann"):  # each model's leaderboard is one click away
        assert f"leaderboard-{model}-on-shapes" in toc


def test_every_table_scrolls_inside_the_page(wide_report):
    html = wide_report.read_text()
    assert html.count("<table") == html.count('<div class="scroll"><table') > 0
    assert ".scroll{overflow-x:auto" in html
    assert "<script>" in html and "src=\"http" not in html and "<link" not in html  # self-contained


def test_slugs_are_unique_and_scrollable_wraps_each_table():
    taken: set[str] = set()
    assert [slug(t, taken) for t in ("Leaderboard: a on b", "Leaderboard: a on b", "!!")] == \
        ["leaderboard-a-on-b", "leaderboard-a-on-b-2", "section"]
    assert scrollable("<table class='x'></table><table></table>") == \
        "<div class=\"scroll\"><table class='x'></table></div><div class=\"scroll\"><table></table></div>"


# -- a real browser -----------------------------------------------------------------------------
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

PROBE_HEAD = """<script>window.__errs=[];
window.addEventListener('error',function(e){__errs.push(String(e.message))});
var __ce=console.error;
console.error=function(){__errs.push([].join.call(arguments,' '));__ce.apply(console,arguments)};</script>"""
# after load: tables past the viewport, the page's own width, errors, and a click on the first
# leaderboard's "mean rank" header (ranks ascending), and a second one (descending)
PROBE_TAIL = """<script>window.addEventListener('load',function(){
var w=document.documentElement.clientWidth,bad=[];
document.querySelectorAll('table').forEach(function(t,i){var r=(t.closest('.scroll')||t).getBoundingClientRect();
  if(r.right>w+1)bad.push(i);});
var t=document.querySelector("h2[id^='leaderboard-'] + div table"),head=t.rows[0],col=head.cells.length-1;
function ranks(){return Array.prototype.slice.call(t.rows,1).map(function(r){return parseFloat(r.cells[col].textContent);});}
head.cells[col].click();var up=ranks();head.cells[col].click();var down=ranks();
var pre=document.createElement('pre');pre.id='probe';
pre.textContent=JSON.stringify({width:w,page:document.documentElement.scrollWidth,overflow:bad,errors:__errs,
  up:up,down:down,tableWidth:t.scrollWidth});
document.body.appendChild(pre);});</script>"""


def render_in_chromium(html: Path, tmp: Path, width: int = 1024) -> dict:
    """Load ``html`` with the probe scripts in headless Chromium; the probe's findings."""
    page = html.read_text().replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "</body>")
    probe = tmp / "probe.html"
    probe.write_text(page)
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},800",
                          "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', out.stdout)
    assert found, out.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed")
def test_renders_in_chromium_without_overflow_or_errors(wide_report, tmp_path):
    seen = render_in_chromium(wide_report, tmp_path)
    assert seen["errors"] == []
    assert seen["tableWidth"] > seen["width"]           # the leaderboard is wider than the screen ...
    assert seen["overflow"] == [] and seen["page"] <= seen["width"]  # ... yet scrolls inside the page
    assert len(seen["up"]) == 3 and len(set(seen["up"])) == 3
    assert seen["up"] == sorted(seen["up"]) and seen["down"] == sorted(seen["up"], reverse=True)


@pytest.mark.slow
def test_default_report_stays_under_its_size_budget(tmp_path):
    """The committed default run's page (its figures are most of it) within the budget."""
    root = Path(__file__).resolve().parent.parent / "results" / "default"
    html = build_report(root, tmp_path / "report") / "report.html"
    n_methods = len(json.loads((root / "run.json").read_text())["order"]["methods"])
    assert html.stat().st_size < BUDGET_PER_METHOD * n_methods
