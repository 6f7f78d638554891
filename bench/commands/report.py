"""``snnxai report RUN_DIR``: leaderboards, figures and report.html from a finished run."""

from __future__ import annotations

import argparse

HELP = "write the leaderboard, figures and report.html of a run directory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (results.csv[.gz] + run.json)")
    p.add_argument("--out", help="output folder (default RUN_DIR/report)")


def main(args: argparse.Namespace) -> int:
    from bench.report import build_report

    out = build_report(args.run_dir, args.out)
    print(out / "report.html")
    return 0
