"""``snnxai merge RUN_DIRS... --out DIR``: combine the shards of one run into one run directory
(or copy one finished run's results, run.json and example maps into a clean folder)."""

from __future__ import annotations

import argparse

HELP = "merge the shard directories of one run (snnxai run --shard i/n) into one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", help="the shard run directories")
    p.add_argument("--out", required=True, help="the merged run directory")
    p.add_argument("--no-report", action="store_true", help="skip the report")
    p.add_argument("--compress", action="store_true",
                   help="write results.csv.gz (byte-stable gzip) instead of results.csv")


def main(args: argparse.Namespace) -> int:
    from bench.run import merge_runs

    out = merge_runs(args.run_dirs, args.out, report=not args.no_report, compress=args.compress)
    print(out)
    return 0
