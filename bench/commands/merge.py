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
    p.add_argument("--quiet", action="store_true", help="no progress lines (and no warnings)")


def main(args: argparse.Namespace) -> int:
    import sys

    from bench.commands.common import check_out_dir
    from bench.pipeline.run import merge_runs
    from bench.report import build_report

    check_out_dir(args.out)
    log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    log(f"merge: {len(args.run_dirs)} run director{'y' if len(args.run_dirs) == 1 else 'ies'} into {args.out}")
    out = merge_runs(args.run_dirs, args.out, report=False, compress=args.compress)
    if not args.no_report:
        build_report(out, log=log)
    print(out)
    return 0
