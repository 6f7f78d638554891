"""``snnxai repro kim2021``: reproduce a paper's claims as measured verdicts (one page each)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "reproduce a paper's claims as measured verdicts (runs its suites, writes one page per claim)"
PAPERS = ("kim2021",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paper", choices=PAPERS, help="the paper (kim2021: Kim & Panda 2021, Sci. Rep.)")
    p.add_argument("--out", default="reports/kim2021", help="where the pages go (index.md + one .md per claim)")
    p.add_argument("--results", default="results/kim2021", help="where the suite runs go (resumable)")
    p.add_argument("--limit", type=int, metavar="N", help="samples per run (development: e.g. 16)")
    p.add_argument("--preset", choices=["cpu", "paper"], default="cpu",
                   help="cpu: the VGG5 zoo on shapes; paper: VGG11, 64x64, T=30 on Tiny-ImageNet (GPU)")
    p.add_argument("--data-root", default="", help="--preset paper: the Tiny-ImageNet folder")
    p.add_argument("--only", action="append", default=[], metavar="ANALYSIS",
                   help="run only these analyses (layers, training, pair, knobs, attacks, texture); pages are "
                        "written for whatever results exist")
    p.add_argument("--pages-only", action="store_true", help="write the pages from existing results, run nothing")
    p.add_argument("--robustness", default="results/robustness", help="the committed robustness run (page 4)")
    p.add_argument("--robustness-report", default="reports/robustness", help="its report (page 4 reads it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def main(args: argparse.Namespace) -> int:
    from bench.commands.common import check_out_dir
    from bench.errors import BenchError
    from bench.repro import kim2021

    if args.limit is not None and args.limit < 1:
        raise BenchError(f"--limit must be >= 1, got {args.limit}")
    kim2021.check_only(tuple(args.only), args.preset)
    # every path checked before a suite runs or a page is written
    check_out_dir(args.out)
    if args.pages_only:  # read only: a folder that holds the runs
        if not Path(args.results).is_dir():
            raise BenchError(f"--results {args.results} is not a folder of runs"
                             + (" (it is a file)" if Path(args.results).exists() else ""))
    else:
        check_out_dir(args.results, "--results")
    results, out = Path(args.results), Path(args.out)
    if not args.pages_only:
        kim2021.run_all(results, args.preset, args.limit, args.data_root, progress=not args.quiet,
                        only=tuple(args.only))
    pages = kim2021.build_pages(results, out, Path(args.robustness), Path(args.robustness_report))
    for p in pages:
        print(f"{p.slug}: {p.verdict or ('not measured: ' + p.missing if p.missing else 'descriptive')}")
    print(out / "index.md")
    return 0
