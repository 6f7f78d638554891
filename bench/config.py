"""Config machinery: TOML into frozen dataclasses, ``--set`` overrides, a stable hash.

Suites are TOML files read with stdlib ``tomllib``. Every table is turned into a frozen
dataclass with type checks (:func:`build_dataclass`); ``--set a.b=c`` overrides any field
before that happens (:func:`apply_overrides`), so overrides are type-checked exactly like
file values. :func:`config_hash` is a sha256 over canonical JSON (sorted keys), pinned by a
test so that run directories keep their names across versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from bench.errors import ConfigError


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is a one-line :class:`ConfigError`."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))  # TOML is UTF-8 whatever the locale
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a UTF-8 text file (byte {exc.start}); TOML files are UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``. The value is read as a TOML literal (``0.3``, ``true``,
    ``[1, 2]``, ``"x"``); anything that is not a literal is taken as a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    path = [k for k in key.strip().split(".") if k]
    if not path:
        raise ConfigError(f"--set has an empty key: {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def parse_key_values(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` (flat keys, values as in :func:`parse_override`)."""
    out: dict[str, Any] = {}
    for text in items:
        path, value = parse_override(text)
        out[".".join(path)] = value
    return out


def apply_overrides(table: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a deep copy of ``table`` with each ``a.b=c`` override applied."""
    out = json.loads(json.dumps(table))
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for k in path[:-1]:
            nxt = node.setdefault(k, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {text!r}: {k!r} is a value, not a table")
            node = nxt
        node[path[-1]] = value
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_value(value: Any, tp: Any, where: str) -> Any:
    """Check (and gently coerce: int->float, list->tuple) ``value`` against type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return check_value(value, a, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        seq = [check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        vt = args[1] if args else Any
        return {str(k): check_value(v, vt, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return build_dataclass(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def build_dataclass(cls: type, table: dict[str, Any], where: str = "") -> Any:
    """Build frozen dataclass ``cls`` from ``table``; unknown keys and bad types are errors.

    Missing keys take the dataclass defaults. A dataclass may define ``__post_init__`` for
    cross-field checks; a ``ValueError`` it raises becomes a :class:`ConfigError`.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        import difflib

        hint = ""
        close = difflib.get_close_matches(unknown[0], list(fields), n=1)
        if close:
            hint = f"; did you mean {close[0]!r}?"
        raise ConfigError(f"{where or cls.__name__}: unknown key {unknown[0]!r}{hint} "
                          f"(allowed: {', '.join(fields)})")
    kwargs = {}
    for name, value in table.items():
        kwargs[name] = check_value(value, hints[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def to_plain(obj: Any) -> Any:
    """Dataclasses/tuples/paths -> JSON-compatible plain data (used for hashing and run.json).

    A field declared with ``metadata={"omit_default": True}`` is left out while it holds its
    default: an option added later keeps every hash and record written before it unchanged
    (:func:`build_dataclass` restores the default when the key is absent)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get("omit_default") and getattr(obj, f.name) == f.default)}
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj.is_integer():
        return obj  # json writes 1.0, stable across runs
    return obj


def canonical_json(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, plain data only."""
    return json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(obj: Any, length: int = 12) -> str:
    """Stable hex hash of a config (dataclass or plain data): sha256 of canonical JSON."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]
