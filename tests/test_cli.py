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


def test_filter_without_match_says_so(capsys):
    assert main(["ls", "methods", "--where", "model_kind=nothing"]) == 0
    n = len(REGISTRIES["methods"].names())
    assert capsys.readouterr().out == f"no methods match model_kind='nothing' (of {n}; see `snnxai ls methods`)\n"


def test_filter_on_an_unknown_field_is_an_error(capsys):
    assert main(["ls", "methods", "--where", "model_kid=snn"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --where: methods have no field 'model_kid'; did you mean 'model_kind'?")


def test_filter_selects_exactly_the_matching_entries(capsys):
    assert main(["ls", "methods", "--where", "model_kind=ann"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert names == REGISTRIES["methods"].names(model_kind="ann") and names


def test_module_entry_point_and_error_exit():
    """`python -m bench` is the same CLI; a user error is one line on stderr, exit 2."""
    ok = subprocess.run([sys.executable, "-m", "bench", "ls", "metrics"], capture_output=True, text=True)
    assert ok.returncode == 0 and "name" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "bench", "ls", "methods", "--where", "oops"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
