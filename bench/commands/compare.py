"""``snnxai compare RUN --against REF [--out DIR]``: place a run's new cells (a new method or
model) among a reference run's, with bootstrap CIs and paired tests on the shared samples."""

from __future__ import annotations

import argparse
import shlex
import sys

HELP = "place a run's new entries among a reference run's (e.g. results/leaderboard)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run directory holding the new cells "
                                   "(snnxai run SUITE --only method=NAME --reference REF)")
    p.add_argument("--against", required=True, metavar="REF",
                   help="the reference run directory (results.csv[.gz] + run.json), e.g. results/leaderboard")
    p.add_argument("--out", help="output folder (default RUN_DIR/compare)")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.commands.common import check_out_dir
    from bench.compare import compare_runs, write_comparison

    check_out_dir(args.out)
    cmp = compare_runs(args.run_dir, args.against)   # refuses (BenchError) before any write
    command = "snnxai " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    out = write_comparison(cmp, args.out or Path(args.run_dir) / "compare", command)
    print(out / "compare.md")
    return 0
