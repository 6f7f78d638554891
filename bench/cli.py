"""The ``snnxai`` command line (``python -m bench`` is the same).

Each subcommand lives in its own module under :mod:`bench.commands` defining ``HELP``,
``add_arguments(parser)`` and ``main(args) -> int``. User errors (:class:`BenchError`) are
printed as one line ``error: ...`` with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bench.errors import BenchError

#: subcommand -> module. Order is the order shown in ``--help``.
SUBCOMMANDS = ("ls", "train", "explain", "run", "report", "merge", "compare", "perf", "repro")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnxai", description="Benchmark visual explanations of spiking neural networks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        mod = importlib.import_module(f"bench.commands.{name}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 1
    try:
        return int(args._main(args) or 0)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
