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
    p.add_argument("--device", default="cpu", help="device for --paper (cpu or cuda)")
    p.add_argument("--batch", type=int, default=32, help="batch size for --paper")


def main(args: argparse.Namespace) -> int:
    import torch

    from bench.errors import BenchError
    from bench.perf import check_paper, format_results, run_all

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError(f"--device {args.device}: no CUDA device is available")
    if args.batch < 1:
        raise BenchError(f"--batch must be >= 1, got {args.batch}")
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
