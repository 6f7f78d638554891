"""One small generic registry, used for datasets, models, methods and metrics.

An object exists in the suite because its module registers it with one decorator that
carries all its metadata::

    @METHODS.register(summary="Spike Activation Map", model_kind="snn", temporal=True)
    def sam(inp, params): ...

The registry name is the function name (or ``name=`` for objects without one). Duplicates are
rejected, unknown names get a "did you mean" answer, and listings can be filtered by metadata.
CLI listings, README tables and test parametrizations are all derived from here.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from typing import Any, Callable, Iterator

from bench.errors import BenchError, UnknownNameError


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered object and its metadata.

    ``params`` (optional metadata) is a frozen dataclass type holding the object's tunable
    parameters; ``make_params`` builds it from a config table with type checks.
    """

    name: str
    obj: Any
    meta: dict[str, Any]

    @property
    def summary(self) -> str:
        if self.meta.get("summary"):
            return str(self.meta["summary"])
        doc = getattr(self.obj, "__doc__", None) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def params_cls(self) -> type | None:
        return self.meta.get("params")

    def make_params(self, table: dict[str, Any] | None = None) -> Any:
        """Build this entry's params dataclass from a (possibly partial) config table."""
        from bench.config import build_dataclass

        cls = self.params_cls
        if cls is None:
            if table:
                raise BenchError(f"{self.name!r} takes no parameters, got {sorted(table)}")
            return None
        return build_dataclass(cls, table or {}, where=self.name)


class Registry:
    """A named collection of :class:`Entry` objects with metadata filters.

    ``required`` names metadata keys every registration must provide.
    ``packages`` are imported (all submodules) on first lookup so that registrations run.
    """

    def __init__(self, kind: str, required: tuple[str, ...] = (), packages: tuple[str, ...] = ()):
        self.kind = kind
        self.required = required
        self.packages = packages
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    # -- registration -------------------------------------------------------------------
    def register(self, name: str | None = None, **meta: Any) -> Callable[[Any], Any]:
        """Decorator: register ``obj`` under ``name`` (default: its ``__name__``)."""

        def deco(obj: Any) -> Any:
            self.add(name or obj.__name__, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: Any, **meta: Any) -> Entry:
        """Register ``obj`` directly (for objects that are not functions, e.g. model cards)."""
        if name in self._entries:
            raise ValueError(f"duplicate {self.kind} {name!r}: already registered by "
                             f"{getattr(self._entries[name].obj, '__module__', '?')}")
        missing = [k for k in self.required if k not in meta]
        if missing:
            raise ValueError(f"{self.kind} {name!r} is missing metadata {missing}")
        entry = Entry(name, obj, dict(meta))
        self._entries[name] = entry
        return entry

    # -- lookup -------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for pkg_name in self.packages:
            import_submodules(pkg_name)

    def get(self, name: str) -> Entry:
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(self._entries)) or "none registered"
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known})") from None

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def entries(self, **filters: Any) -> list[Entry]:
        """Entries whose metadata equals every filter value (a list/tuple/set means "any of")."""
        self._ensure_loaded()
        out = []
        for e in self._entries.values():
            ok = True
            for k, want in filters.items():
                have = e.meta.get(k)
                if isinstance(want, (list, tuple, set, frozenset)):
                    ok = have in want
                else:
                    ok = have == want
                if not ok:
                    break
            if ok:
                out.append(e)
        return sorted(out, key=lambda e: e.name)

    def names(self, **filters: Any) -> list[str]:
        return [e.name for e in self.entries(**filters)]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)


def import_submodules(package: str) -> None:
    """Import ``package`` and all its submodules (so their decorators register)."""
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), prefix=package + "."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        importlib.import_module(info.name)


# The four registries of the suite. Each names the packages whose modules register into it.
DATASETS = Registry("dataset", required=("summary",), packages=("bench.data",))
MODELS = Registry("model", packages=("bench.models",))
METHODS = Registry(
    "method",
    required=("summary", "model_kind", "temporal", "needs_grad", "needs_label", "version", "reference"),
    packages=("methods",),
)
METRICS = Registry(
    "metric",
    required=("summary", "category", "higher_is_better", "needs", "output", "version", "reference"),
    packages=("metrics",),
)

REGISTRIES = {"datasets": DATASETS, "models": MODELS, "methods": METHODS, "metrics": METRICS}
