"""``snnxai ls datasets|models|methods|metrics``: list a registry."""

from __future__ import annotations

import argparse

from bench.config import parse_key_values
from bench.listing import render
from bench.registry import REGISTRIES

HELP = "list registered datasets, models, methods or metrics"

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=sorted(REGISTRIES), help="which registry")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="filter by metadata, e.g. --where model_kind=snn")


def main(args: argparse.Namespace) -> int:
    import difflib
    import warnings

    from bench.errors import BenchError
    from bench.listing import listing
    from bench.plugins import PluginWarning

    filters = parse_key_values(args.where)
    full = listing(args.what)  # from the listing cache: no torch import (bench.listing)
    for text in full.warnings:  # broken plugins, also when the listing comes from the cache
        warnings.warn(text, PluginWarning, stacklevel=1)
    for key in filters:
        if key not in full.keys:
            close = difflib.get_close_matches(key, full.keys, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BenchError(f"--where: {args.what} have no field {key!r}{hint} (fields: {', '.join(full.keys)})")
    shown = full.where(filters)
    if not shown.rows:
        said = ", ".join(f"{k}={v!r}" for k, v in filters.items())
        print(f"no {args.what} match {said} (of {len(full.rows)}; see `snnxai ls {args.what}`)")
        return 0
    print(render(shown.header, shown.rows, args.markdown))
    return 0
