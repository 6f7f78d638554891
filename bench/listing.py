"""Registry listings without importing the registries' modules (``snnxai ls`` in a blink).

Listing the methods would otherwise import every method module, hence torch, captum and
matplotlib (seconds and most of a GB) to print a table. The first listing imports them as
always and saves the table, plus each entry's scalar metadata for ``--where`` filters, in the
cache folder (``$SNNXAI_CACHE`` or ``~/.cache/snnxai``) under a hash of the project's source
files; later listings read it back while no source file has changed. A registry already
loaded in this process (tests registering a temporary entry) is always listed live.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.paths import cache_dir  # torch-free: the checkpoint cache's own rule

#: the source trees whose files name and describe the registries' entries
SOURCE_PACKAGES = ("bench", "methods", "metrics")
Scalar = str | int | float | bool | None


#: metadata shown as columns (besides name and summary) of the registries without a spec
#: type; methods and metrics show the spec fields marked as columns (bench.registry.columns)
COLUMNS = {
    "datasets": ("masks", "boxes", "source"),
    "models": ("kind", "arch", "T", "encoding", "twin"),
}



@dataclass(frozen=True)
class Listing:
    """One registry as ``snnxai ls`` shows it: the table, and per row the entry's scalar
    metadata (what ``--where KEY=VALUE`` compares; set- and tuple-valued fields never match a
    scalar, so they are left out) and every metadata key any entry has. ``warnings``: the
    plugins that failed to load when it was built (:mod:`bench.plugins`), shown again from the cache."""

    header: list[str]
    rows: list[list[str]]
    meta: list[dict[str, Scalar]]
    keys: list[str]
    warnings: list[str] = field(default_factory=list)

    def where(self, filters: dict[str, object]) -> Listing:
        """The rows whose metadata equals every filter value (a list means "any of"), as
        :meth:`bench.registry.Registry.entries` filters."""
        def ok(meta: dict[str, Scalar]) -> bool:
            for key, want in filters.items():
                have = meta.get(key, _MISSING)
                if not (have in want if isinstance(want, (list, tuple)) else have == want):
                    return False
            return True

        keep = [i for i, m in enumerate(self.meta) if ok(m)]
        return Listing(self.header, [self.rows[i] for i in keep], [self.meta[i] for i in keep], self.keys)


_MISSING = object()


def source_fingerprint() -> str:
    """sha256 over the paths and bytes of every ``.py`` file of :data:`SOURCE_PACKAGES` (a few
    milliseconds): any edit to a module that registers something gives another fingerprint; so
    does installing, removing or upgrading a plugin (:func:`bench.plugins.fingerprint`)."""
    from bench.plugins import fingerprint as plugins_fingerprint  # entry-point metadata only, nothing imported

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(plugins_fingerprint().encode())
    for pkg in SOURCE_PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def _fields(spec: object) -> dict[str, object]:
    """A spec's fields by name (its filterable metadata)."""
    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}


def live_listing(what: str) -> Listing:
    """Import the registry's modules and build its :class:`Listing`."""
    from bench.plugins import FAILURES
    from bench.registry import REGISTRIES

    header, rows = table(what)
    entries = REGISTRIES[what].entries()
    meta = [{**{k: v for k, v in _fields(e.spec).items() if isinstance(v, (str, int, float, bool)) or v is None},
             "package": e.source} for e in entries]
    keys = sorted({k for e in entries for k in _fields(e.spec)} | {"package"})
    return Listing(header, rows, meta, keys, list(FAILURES.get(REGISTRIES[what].kind, [])))


def listing(what: str) -> Listing:
    """The :class:`Listing` of registry ``what``: from the cache while the sources are unchanged,
    else built live and saved (a cache that cannot be read or written is just not used)."""
    from bench.registry import REGISTRIES

    if REGISTRIES[what].loaded:
        return live_listing(what)
    path = cache_dir() / "listings" / f"{what}-{source_fingerprint()}.json"
    try:
        return Listing(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        pass
    result = live_listing(what)
    _save(path, result)
    return result


def _save(path: Path, result: Listing) -> None:
    """Write ``result`` atomically (a concurrent reader sees the old file or the new one)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(result.__dict__, fh)
        os.replace(tmp, path)
    except OSError:
        pass


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
    from bench.registry import BUILTIN_SOURCE, REGISTRIES, columns

    reg = REGISTRIES[what]
    cols = columns(reg.spec) if reg.spec is not None else COLUMNS[what]
    entries = reg.entries(**(filters or {}))
    if builtin_only:
        entries = [e for e in entries if e.source == BUILTIN_SOURCE]
    package = [] if builtin_only else ["package"]
    header = ["name", *cols, *package, "summary"]
    rows = [[e.name, *(_fmt(getattr(e.spec, c, None)) for c in cols), *([e.source] if package else []), e.summary]
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
