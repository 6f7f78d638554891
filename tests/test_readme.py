"""The README's method/metric/model/dataset tables are generated from the registries."""

from pathlib import Path

from bench.readme import BLOCK, render_readme

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tables_match_registries():
    text = README.read_text()
    assert {m.group(2) for m in BLOCK.finditer(text)} >= {"methods", "metrics", "models", "datasets"}
    assert render_readme(text) == text, "README tables are stale: run `make readme`"


def test_render_replaces_block_content():
    text = "x\n<!-- begin ls methods -->\nold\n<!-- end ls methods -->\ny\n"
    out = render_readme(text)
    assert "old" not in out and "| name |" in out and out.startswith("x\n") and out.endswith("y\n")
