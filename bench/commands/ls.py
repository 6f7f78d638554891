"""``snnxai ls datasets|models|methods|metrics``: list a registry."""

from __future__ import annotations

import argparse

from bench.config import parse_key_values
from bench.registry import REGISTRIES, Entry, columns

HELP = "list registered datasets, models, methods or metrics"

#: metadata shown as columns (besides name and summary) of the registries without a spec
#: type; methods and metrics show the spec fields marked as columns (bench.registry.columns)
COLUMNS = {
    "datasets": ("masks", "boxes", "source"),
    "models": ("kind", "arch", "T", "encoding", "twin"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=sorted(REGISTRIES), help="which registry")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (for the README)")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="filter by metadata, e.g. --where model_kind=snn")


def _fmt(v: object) -> str:
    if isinstance(v, (set, frozenset, tuple, list)):
        return ",".join(sorted(str(x) for x in v)) or "-"
    if v is None:
        return "-"
    return str(v)


def table(what: str, filters: dict[str, object] | None = None, *,
          builtin_only: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a registry listing (used by the CLI and the README generator). The
    ``package`` column names the distribution that registered each entry (a plugin's, or
    ``snn-xai-bench``; :mod:`bench.plugins`). ``builtin_only``: this project's entries only,
    without that column (the README's tables)."""
    from bench.registry import BUILTIN_SOURCE

    reg = REGISTRIES[what]
    cols = columns(reg.spec) if reg.spec is not None else COLUMNS[what]
    entries: list[Entry] = reg.entries(**(filters or {}))
    if builtin_only:
        entries = [e for e in entries if e.source == BUILTIN_SOURCE]
    package = [] if builtin_only else ["package"]
    header = ["name", *cols, *package, "summary"]
    rows = [[e.name, *(_fmt(e.meta.get(c)) for c in cols), *([e.source] if package else []), e.summary]
            for e in entries]
    return header, rows


def render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join(fmt.format(*r) for r in [header, *rows])


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
