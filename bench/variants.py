"""Parameter sweeps inside one run: a method (or metric) table expanded into named variants.

A suite sweeps parameters of one method with a ``sweep`` sub-table (an explicit table, because
a list value is ambiguous: some parameters are themselves lists)::

    [methods.sam]
    gamma = 0.5                      # fixed for every variant
    [methods.sam.sweep]
    layer = ["conv1", "conv2"]       # one variant per value ...
    variant = ["inclusive", "exclusive"]   # ... and per combination (cartesian product)

expands, in the order written (the first swept key varies slowest), into the methods
``sam@layer=conv1,variant=inclusive``, ``sam@layer=conv1,variant=exclusive``,
``sam@layer=conv2,variant=inclusive``, ``sam@layer=conv2,variant=exclusive``. Each variant is
an ordinary method of the suite: its own cells, rows (the variant name is the ``method``
column), resumability and leaderboard row. Its registry entry is the one before the ``@``
(:func:`base_name`). ``[metrics.<m>.sweep]`` works the same way (the name is the ``metric``
column). ``--set 'methods.sam.sweep.layer=["conv1", "conv2"]'`` sweeps from the command line.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import re
import tomllib
import typing
from typing import TYPE_CHECKING

from bench.config import check_value, to_plain
from bench.errors import ConfigError

if TYPE_CHECKING:
    from bench.registry import Entry

SEP = "@"
SWEEP = "sweep"
#: where a variant name's next ``key=value`` starts (a value may itself hold commas: ``[1,2]``)
_NEXT_KEY = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_]*=)")


def base_name(name: str) -> str:
    """The registry name of a method or metric name: ``"sam@layer=conv1"`` -> ``"sam"``."""
    return name.split(SEP, 1)[0]


def format_value(value: object) -> str:
    """A swept value as the variant name shows it: strings as they are, everything else as
    compact JSON (``true``, ``0.5``, ``[1,2]``)."""
    if isinstance(value, str):
        return value
    return json.dumps(to_plain(value), separators=(",", ":"))


def variant_name(base: str, assignment: dict[str, object]) -> str:
    """``base@k1=v1,k2=v2`` for the swept values ``assignment`` (in sweep order)."""
    return base + SEP + ",".join(f"{k}={format_value(v)}" for k, v in assignment.items())


def parse_variant(name: str) -> tuple[str, dict[str, object]]:
    """``"sam@layer=conv1,gamma=0.3"`` -> ``("sam", {"layer": "conv1", "gamma": 0.3})``; values
    are read as TOML literals, anything else as a bare string (like ``--set``). A name without
    ``@`` -> ``(name, {})``."""
    if SEP not in name:
        return name, {}
    base, rest = name.split(SEP, 1)
    out: dict[str, object] = {}
    for part in _NEXT_KEY.split(rest):
        key, eq, raw = part.partition("=")
        if not eq or not key:
            raise ConfigError(f"{name!r}: expected name@key=value[,key=value...], got {part!r}")
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw
    return base, out


def expand(entry: Entry, table: dict[str, object], where: str) -> dict[str, tuple[object, dict[str, object]]]:
    """The entries a suite table makes: ``{name: (params dataclass, swept values)}``.

    Without a ``sweep`` key: ``{entry.name: (params, {})}``. With one: a variant per
    combination of the swept values (see the module doc), each with the table's fixed values
    and its own swept ones. ``where`` (``"methods.sam"``) names the table in errors; every bad
    sweep (not a table, empty, an unknown parameter, a value list that is empty, not a list,
    repeats a value or holds a value of the wrong type) is a :class:`ConfigError`."""
    if SWEEP not in table:
        return {entry.name: (entry.make_params(table), {})}
    fixed = {k: v for k, v in table.items() if k != SWEEP}
    sweep = table[SWEEP]
    cls = entry.params_cls
    if cls is None:
        raise ConfigError(f"{where}.{SWEEP}: {entry.name!r} takes no parameters to sweep")
    fields = {f.name for f in dataclasses.fields(cls)}
    if SWEEP in fields:  # a parameter named "sweep" would be ambiguous with the table
        raise ConfigError(f"{where}: {entry.name!r} has a parameter named {SWEEP!r}; it cannot be swept")
    if not isinstance(sweep, dict) or not sweep:
        raise ConfigError(f"{where}.{SWEEP}: expected a non-empty table of parameter = [values], got {sweep!r}")
    hints = typing.get_type_hints(cls)
    values: dict[str, list[object]] = {}
    for key, vals in sweep.items():
        at = f"{where}.{SWEEP}.{key}"
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{at}: {entry.name!r} has no parameter {key!r}{hint} "
                              f"(parameters: {', '.join(sorted(fields))})")
        if key in fixed:
            raise ConfigError(f"{at}: {key!r} is also set in [{where}]; set it in one place")
        if not isinstance(vals, list):
            raise ConfigError(f"{at}: expected a list of values, got {vals!r}")
        if not vals:
            raise ConfigError(f"{at}: the list of values is empty")
        checked = [check_value(v, hints[key], f"{at}[{i}]") for i, v in enumerate(vals)]
        shown = [format_value(v) for v in checked]
        if len(set(shown)) != len(shown):
            raise ConfigError(f"{at}: a value is listed twice: {vals!r}")
        bad = next((s for s in shown if "/" in s or "\\" in s), None)
        if bad is not None:  # the variant name is a file name in the run directory
            raise ConfigError(f"{at}: value {bad!r} contains a path separator")
        values[key] = checked
    out: dict[str, tuple[object, dict[str, object]]] = {}
    for combo in itertools.product(*values.values()):
        assignment = dict(zip(values, combo))
        name = variant_name(entry.name, assignment)
        try:
            params = entry.make_params({**fixed, **assignment})
        except ConfigError as exc:
            raise ConfigError(f"{where}.{SWEEP} ({name}): {exc}") from None
        out[name] = (params, assignment)
    return out
