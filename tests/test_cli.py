"""The CLI: listings derived from the registries, one-line errors with non-zero exit."""

import subprocess
import sys

import pytest

from bench.cli import main
from bench.registry import REGISTRIES


@pytest.mark.parametrize("what", sorted(REGISTRIES))
def test_ls_lists_every_registered_name(what, capsys):
    assert main(["ls", what]) == 0
    out = capsys.readouterr().out
    for name in REGISTRIES[what].names():
        assert name in out


def test_ls_markdown_table(capsys):
    assert main(["ls", "methods", "--markdown"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| name |") and lines[1].startswith("|---")
    assert len(lines) == 2 + len(REGISTRIES["methods"].names())


def test_bad_filter_value_gives_empty_listing(capsys):
    assert main(["ls", "methods", "--where", "model_kind=nothing"]) == 0
    assert capsys.readouterr().out.strip().count("\n") == 0  # header only


def test_module_entry_point_and_error_exit():
    """`python -m bench` is the same CLI; a user error is one line on stderr, exit 2."""
    ok = subprocess.run([sys.executable, "-m", "bench", "ls", "metrics"], capture_output=True, text=True)
    assert ok.returncode == 0 and "name" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "bench", "ls", "methods", "--where", "oops"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
