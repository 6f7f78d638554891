"""Third-party methods, metrics, models and datasets, registered through entry points.

A package adds to the suite without editing it by declaring entry points in its own metadata
(its ``pyproject.toml``)::

    [project.entry-points."snn_xai_bench.methods"]
    my_method = "my_pkg.methods"            # a module: importing it registers (the decorators)
    my_other = "my_pkg.plugin:register"     # or a function, called with the registry

Groups: ``snn_xai_bench.methods``, ``.metrics``, ``.models``, ``.datasets`` (one per registry of
:mod:`bench.registry`). A registry loads its group once, when it is first used, right after its
built-in modules (:meth:`bench.registry.Registry._ensure_loaded`); listing the entry points
reads the installed distributions' metadata and imports nothing. Each entry a plugin
registers carries the plugin's distribution name as its ``source`` (``snnxai ls`` shows it;
built-ins have :data:`bench.registry.BUILTIN_SOURCE`).

A broken plugin -- its import fails, its register function raises, or a registration is
invalid (a duplicate name, a missing field) -- is reported as one :class:`PluginWarning` line
and skipped: whatever it registered before failing is removed again, in every registry, so a
run that does not use it is unaffected.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import types
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.registry import Registry

#: the ``source`` of every entry this project registers; a plugin's entries carry its
#: distribution's name
BUILTIN_SOURCE = "snn-xai-bench"
_SOURCES = [BUILTIN_SOURCE]  # a stack: the source that registrations made now are credited to

#: registry kind -> its entry-point group
GROUPS = {"method": "snn_xai_bench.methods", "metric": "snn_xai_bench.metrics",
          "model": "snn_xai_bench.models", "dataset": "snn_xai_bench.datasets"}

#: registry kind -> the warnings of its plugins that failed to load in this process, in load order
FAILURES: dict[str, list[str]] = {}
#: distribution name -> the version of it whose entry points were loaded in this process (None:
#: unknown); what run.json records of a plugin (:func:`bench.provenance.plugin_record`)
LOADED: dict[str, str | None] = {}


@contextmanager
def registering_as(source: str) -> Iterator[None]:
    """Credit the registrations made inside the block to ``source`` (a distribution name)."""
    _SOURCES.append(source)
    try:
        yield
    finally:
        _SOURCES.pop()


def current_source() -> str:
    """The source that a registration made now is credited to."""
    return _SOURCES[-1]


class PluginWarning(UserWarning):
    """A plugin that could not be loaded (it is skipped)."""


def entry_points(kind: str) -> list[md.EntryPoint]:
    """The installed entry points of registry ``kind``'s group, in a stable order (by name, then
    value); none for a registry outside :data:`GROUPS` (one a test makes)."""
    if kind not in GROUPS:
        return []
    return sorted(md.entry_points(group=GROUPS[kind]), key=lambda ep: (ep.name, ep.value))


def distribution(ep: md.EntryPoint) -> str:
    """The name of the distribution that declares ``ep`` (its top-level module if unknown)."""
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ep.value.split(":")[0].split(".")[0]


def version(ep: md.EntryPoint) -> str | None:
    """The version of the distribution that declares ``ep`` (None if unknown)."""
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else None


def loaded_version(source: str) -> str | None:
    """The version of plugin distribution ``source`` as loaded in this process, else as
    installed now (None: unknown, e.g. an entry registered under a module name)."""
    if source in LOADED:
        return LOADED[source]
    try:
        return md.version(source)
    except md.PackageNotFoundError:
        return None


def fingerprint() -> str:
    """A digest of every installed entry point of the four groups with its distribution and
    version (imports nothing): what a cached listing of the registries depends on besides the
    project's own files."""
    h = hashlib.sha256()
    for kind in sorted(GROUPS):
        for ep in entry_points(kind):
            h.update(f"{ep.group}\0{ep.name}\0{ep.value}\0{distribution(ep)}\0{version(ep) or ''}\n".encode())
    return h.hexdigest()[:12]


def load_plugins(registry: Registry, registries: Mapping[str, Registry]) -> None:
    """Load the entry points of ``registry``'s group, each under its distribution's name as the
    entries' source; a failing one is warned about and rolled back in every one of
    ``registries`` (module doc)."""
    for ep in entry_points(registry.kind):
        source = distribution(ep)
        before = {name: set(reg.names_registered()) for name, reg in registries.items()}
        try:
            with registering_as(source):
                obj = ep.load()
                if not isinstance(obj, types.ModuleType):
                    if not callable(obj):
                        raise TypeError(f"{ep.value} is a {type(obj).__name__}, not a module or a function")
                    obj(registry)
            LOADED[source] = version(ep)
        except Exception as exc:  # a third party's code: any failure skips that plugin only
            for name, reg in registries.items():
                for entry in set(reg.names_registered()) - before[name]:
                    reg.discard(entry)
            text = (f"plugin {ep.name!r} ({source}, {ep.group} = {ep.value!r}) skipped: "
                    f"{type(exc).__name__}: {exc}".replace("\n", " "))
            FAILURES.setdefault(registry.kind, []).append(text)
            warnings.warn(text, PluginWarning, stacklevel=2)
