"""``snnxai perf``: run the perf harness (measured ratios against baselines)."""

from __future__ import annotations

import argparse
import json

HELP = "measure performance ratios (SAM recursion vs reference, curve cost vs forward passes)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="fewer repeats and images")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--paper", action="store_true",
                   help="cost at the paper's scale (vgg11_snn_t30, 64x64, T=30): SAM, SNN Grad-CAM, "
                        "PGD-10 with and without EOT-8, as ratios to one forward pass")
    p.add_argument("--device", default="cpu", help="device for --paper (cpu, cuda or cuda:N)")
    p.add_argument("--batch", type=int, default=32, help="batch size for --paper")
    p.add_argument("--out", metavar="DIR",
                   help="the performance report: every figure against its peer (reference SAM loop, "
                        "per-image curves, snnTorch, torchattacks), written to DIR/perf.json + DIR/README.md")
    p.add_argument("--small", action="store_true", help="with --out: tiny sizes (checks the harness in seconds)")
    p.add_argument("--suite", metavar="SUITE",
                   help="with --out: also run this suite in a child process (wall time, peak RSS, cost "
                        "per cell; `snnxai run --dry-run` predicts from it)")
    p.add_argument("--suite-limit", type=int, metavar="N", help="with --suite: --limit N samples")


def main(args: argparse.Namespace) -> int:
    import torch

    from bench.commands.common import check_device, check_out_file, check_positive
    from bench.errors import BenchError
    from bench.perf import check_paper, format_results, run_all

    check_device(args.device)
    if args.device != "cpu" and not args.paper:
        raise BenchError("--device applies to --paper only (the other measurements run on the CPU)")
    check_positive(args.threads, "--threads")
    check_positive(args.batch, "--batch")
    if args.json:
        check_out_file(args.json, "--json", (".json",))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.out:
        return write_perf_report(args)
    if args.small or args.suite or args.suite_limit is not None:
        raise BenchError("--small, --suite and --suite-limit belong to the report: add --out DIR")
    if args.paper:
        results = check_paper(batch=args.batch, device=args.device, repeats=1 if args.quick else 2)
    else:
        results = run_all(quick=args.quick)
    print(format_results(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{"name": r.name, "ours_s": r.ours_s, "baseline_s": r.baseline_s, "ratio": r.ratio,
                        "target": r.target} for r in results], fh, indent=2)
    return 0


def write_perf_report(args: argparse.Namespace) -> int:
    """``--out DIR``: measure every figure of the report, then write DIR/perf.json and DIR/README.md."""
    import tempfile

    from bench.errors import BenchError
    from bench.perf import FULL, SMALL, measure_suite_run, perf_report, report_markdown, write_report

    if args.paper or args.quick or args.json:
        raise BenchError("--out writes the performance report; it takes no --paper, --quick or --json")
    if args.suite_limit is not None and (args.suite_limit < 1 or not args.suite):
        raise BenchError("--suite-limit needs --suite and N >= 1")
    suite_run = None
    if args.suite:
        with tempfile.TemporaryDirectory(prefix="snnxai-perf-") as tmp:
            suite_run = measure_suite_run(args.suite, f"{tmp}/run", args.suite_limit)
    report = perf_report(SMALL if args.small else FULL, suite_run)
    write_report(report, args.out)
    print(report_markdown(report))
    return 0
