"""``snnxai run [SUITE | path.toml]``: run a benchmark suite end to end (results + report)."""

from __future__ import annotations

import argparse
import shlex
import sys

from bench.adapters.cli import add_user_model_arguments

HELP = "run a benchmark suite: explain, score, write results.csv, run.json and the report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", nargs="?", default="default",
                   help="a shipped suite name (default, smoke, ...) or a path to a suite .toml")
    p.add_argument("--out", help="run directory (default runs/<suite>-<hash>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a suite value, e.g. --set methods.sam.gamma=0.3 (repeatable)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="shorthand for --set run.device=...")
    p.add_argument("--limit", type=int, metavar="N",
                   help="shorthand for --set run.n_samples=N (N >= 1; leave it out for the suite's count)")
    p.add_argument("--shard", metavar="I/N", help="run shard I of N (1-based); merge with snnxai merge")
    p.add_argument("--force", action="store_true", help="recompute every cell, ignoring finished ones")
    p.add_argument("--no-report", action="store_true", help="skip the report at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings or summary")
    p.add_argument("--train-missing", action="store_true",
                   help="train the models that have no checkpoint for the suite's training data (minutes "
                        "each); without it such a run stops before writing anything")
    add_user_model_arguments(p)
    p.add_argument("--only", action="append", default=[], metavar="method=NAME|model=NAME",
                   help="compute only the cells of this method / model (repeatable; a name the suite "
                        "lacks is added with its default params); same config hash as without it")
    p.add_argument("--reference", metavar="RUN_DIR",
                   help="a finished run (e.g. results/leaderboard): its cells are not recomputed, and "
                        "this run must be comparable with it (snnxai compare)")
    p.add_argument("--executor", default="local", choices=("local", "ray"),
                   help="where the cells run: this process (local, default) or Ray tasks (ray; "
                        "pip install 'snn-xai-bench[ray]'); the results are the same bytes")
    p.add_argument("--address", metavar="auto|HOST:PORT",
                   help="the Ray cluster to join with --executor ray (default: start a local Ray instance)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (cells) and its predicted cost from the costs measured so far "
                        "(reports/perf/perf.json and the committed runs under results/); run nothing")


def overrides(args: argparse.Namespace) -> list[str]:
    """--set values plus the --device / --limit shorthands (applied last, so they win)."""
    out = list(args.overrides)
    if args.device:
        out.append(f"run.device={args.device}")
    if args.limit is not None:
        out.append(f"run.n_samples={args.limit}")
    return out


def main(args: argparse.Namespace) -> int:
    from bench.adapters.cli import with_user_model
    from bench.commands.common import check_out_dir
    from bench.errors import BenchError
    from bench.pipeline.plan import CellFilter
    from bench.pipeline.run import parse_shard, run_suite
    from bench.store.rundir import check_suite_names
    from bench.suite import load_suite

    shard = parse_shard(args.shard)
    only = CellFilter.parse(args.only)
    if args.limit is not None and args.limit < 1:
        raise BenchError(f"--limit must be >= 1, got {args.limit} (leave --limit out to run the suite's "
                         "samples; --set run.n_samples=0 runs the whole split)")
    check_out_dir(args.out)
    suite = load_suite(args.suite, overrides(args))
    suite = with_user_model(suite, args)  # --model: the user's own SNN replaces the suite's models
    check_suite_names(suite)  # before --dry-run too: it must refuse what the run refuses
    if suite.run.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise BenchError("device cuda requested but torch sees no CUDA device; use --device cpu")
    if args.dry_run:
        from bench.perf import print_dry_run

        if args.reference is not None:  # the plan the real run would compute, or its refusal
            dry_run_against(suite, only, shard, args.reference)
        else:
            print_dry_run(suite, only)
        return 0
    from bench.pipeline.executors import make_executor

    executor = make_executor(args.executor, args.address)
    command = "snnxai " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    out = run_suite(suite, out=args.out, shard=shard, force=args.force, progress=not args.quiet,
                    report=not args.no_report, command=command, only=only, reference=args.reference,
                    train_missing=args.train_missing, executor=executor)
    if args.quiet:
        print(out)
    return 0


def dry_run_against(suite, only, shard, reference: str) -> None:
    """``--dry-run --reference REF``: the checks the run makes before it writes (REF readable,
    comparable with this run's dataset, samples and config; some cell left to compute), then
    the cells it would compute -- those REF lacks -- with their predicted cost. The same steps
    as :func:`bench.pipeline.run.run_suite` up to its first write."""
    from bench import compare
    from bench.perf import measured_costs, predict_cost
    from bench.pipeline.plan import make_plan
    from bench.pipeline.runtime import Clock, Progress
    from bench.pipeline.shard import load_shard

    ref = compare.load_run(reference)
    plan = make_plan(only.include(suite) if only else suite, only)
    total_cells = len(plan.cells)
    plan, record = compare.drop_reference_cells(plan, ref)
    data = load_shard(plan, shard, Clock(), Progress(False))
    manifest = plan.manifest(shard, "", list(data.sample_ids), data.positions.tolist())
    compare.check_compatible(manifest, ref, "this run")
    n = len(plan.positions)
    metrics = {"": [m.name for m in plan.model_metrics]}
    metrics.update({c.method: [m.name for m in plan.explanation_metrics] for c in plan.cells if c.method})
    print(f"run {plan.run_id}: {len(plan.cells)} cells, {n} samples, {len(plan.skipped_cells)} cells skipped, "
          f"{total_cells - len(plan.cells)} cells taken from reference {ref['run_id']} (not recomputed)")
    per_sample, used = measured_costs(suite.run.name, suite.run.device)
    rows, total, unknown = predict_cost([(c.model, c.method) for c in plan.cells], metrics, n, per_sample)
    for model, method, metric, secs in rows:
        shown = "?" if secs is None else f"{secs:9.1f} s"
        print(f"  {model:<22} {method or '(model scope)':<22} {metric:<26} {shown}")
    note = f" ({unknown} rows not measured)" if unknown else ""
    print(f"predicted cost: {total:.0f} s on the machine that measured it, one process{note}")
    if used:
        print("measured costs from: " + ", ".join(used))
