"""``snnxai perf``: run the perf harness (measured ratios against baselines)."""

from __future__ import annotations

import argparse
import json

HELP = "measure performance ratios (SAM recursion vs reference, curve cost vs forward passes)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="fewer repeats and images")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--threads", type=int, help="torch CPU threads")


def main(args: argparse.Namespace) -> int:
    import torch

    from bench.perf import format_results, run_all

    if args.threads:
        torch.set_num_threads(args.threads)
    results = run_all(quick=args.quick)
    print(format_results(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{"name": r.name, "ours_s": r.ours_s, "baseline_s": r.baseline_s, "ratio": r.ratio,
                        "target": r.target} for r in results], fh, indent=2)
    return 0
