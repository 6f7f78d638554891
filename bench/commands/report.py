"""``snnxai report RUN_DIR``: leaderboards, figures and report.html from a finished run."""

from __future__ import annotations

import argparse

HELP = "write the leaderboard, figures and report.html of a run directory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (results.csv[.gz] + run.json)")
    p.add_argument("--out", help="output folder (default RUN_DIR/report)")
    p.add_argument("--quiet", action="store_true", help="no progress lines (and no warnings)")


def main(args: argparse.Namespace) -> int:
    import sys

    from bench.commands.common import check_out_dir
    from bench.report import build_report
    from bench.store.rundir import verify_examples

    check_out_dir(args.out)
    verify_examples(args.run_dir)  # results.csv is checked as it is read (bench.store.results.read_results)
    log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    out = build_report(args.run_dir, args.out, log=log)
    print(out / "report.html")
    return 0
