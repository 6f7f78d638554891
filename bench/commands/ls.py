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


def table(what: str, filters: dict[str, object] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a registry listing (used by the CLI and the README generator)."""
    reg = REGISTRIES[what]
    cols = columns(reg.spec) if reg.spec is not None else COLUMNS[what]
    entries: list[Entry] = reg.entries(**(filters or {}))
    header = ["name", *cols, "summary"]
    rows = [[e.name, *(_fmt(e.meta.get(c)) for c in cols), e.summary] for e in entries]
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
    header, rows = table(args.what, parse_key_values(args.where))
    print(render(header, rows, args.markdown))
    return 0
