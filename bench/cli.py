"""The ``snnxai`` command line (``python -m bench`` is the same).

Each subcommand lives in its own module under :mod:`bench.commands` defining ``HELP``,
``add_arguments(parser)`` and ``main(args) -> int``. User errors (:class:`BenchError`) are
printed as one line ``error: ...`` with exit status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable
from typing import TextIO

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
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning(quiet=bool(getattr(args, "quiet", False)))
        try:
            return int(args._main(args) or 0)
        except BenchError as exc:
            _say(f"error: {exc}")
            return 2
        except OSError as exc:  # the OS refused a path the checks could not foresee (disk full, a race)
            where = f" {exc.filename}" if exc.filename else ""
            _say(f"error: cannot access{where}: {exc.strerror or exc}")
            return 2
        except KeyboardInterrupt:
            _say("interrupted")
            return 130


def _say(line: str) -> None:
    """Print ``line`` on stderr on a line of its own: a progress bar left half-drawn by the
    exception is closed first, so the message never continues the bar's line."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ()):
        try:
            bar.close()
        except Exception:  # a bar whose stream is gone: nothing to tidy
            pass
    print(line, file=sys.stderr, flush=True)


def _one_line_warning(quiet: bool) -> Callable[..., None]:
    """A :func:`warnings.showwarning` printing ``warning: <message>`` once per message, with no
    source line (``--quiet``: nothing). Through tqdm when loaded, so bars stay intact."""
    seen: set[str] = set()

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        text = str(message).strip().replace("\n", " ")
        if quiet or text in seen:
            return
        seen.add(text)
        tqdm = sys.modules.get("tqdm")
        if tqdm is not None:
            tqdm.tqdm.write(f"warning: {text}", file=sys.stderr)
        else:
            print(f"warning: {text}", file=sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())
