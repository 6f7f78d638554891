"""Config machinery: TOML -> frozen dataclasses, --set overrides with type checks, stable hash."""

import dataclasses
from typing import Literal

import pytest

from bench.config import apply_overrides, build_dataclass, canonical_json, config_hash, load_toml, parse_override
from bench.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Inner:
    gamma: float = 0.5
    variant: Literal["exclusive", "inclusive", "official"] = "inclusive"


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str = "x"
    seed: int = 0
    limit: int | None = None
    layers: tuple[str, ...] = ("conv1",)
    inner: Inner = Inner()
    flag: bool = False


def test_build_defaults_and_nested():
    cfg = build_dataclass(Outer, {"seed": 3, "inner": {"gamma": 1}, "layers": ["a", "b"]})
    assert cfg == Outer(seed=3, inner=Inner(gamma=1.0), layers=("a", "b"))
    assert isinstance(cfg.inner.gamma, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 4  # type: ignore[misc]


@pytest.mark.parametrize("table, message", [
    ({"seed": 1.5}, "seed: expected an integer"),
    ({"seed": True}, "seed: expected an integer"),
    ({"flag": 1}, "flag: expected true or false"),
    ({"inner": {"variant": "other"}}, "inner.variant: expected one of"),
    ({"inner": {"gama": 1.0}}, "did you mean 'gamma'"),
    ({"layers": "conv1"}, "layers: expected a list"),
    ({"limit": "ten"}, "limit: expected"),
])
def test_type_errors_are_one_line(table, message):
    with pytest.raises(ConfigError) as info:
        build_dataclass(Outer, table)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_optional_accepts_none_and_value():
    assert build_dataclass(Outer, {"limit": 5}).limit == 5
    assert build_dataclass(Outer, {}).limit is None


def test_parse_override_literals():
    assert parse_override("a.b=0.3") == (["a", "b"], 0.3)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=hello") == (["a"], "hello")
    assert parse_override('a="5"') == (["a"], "5")
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("novalue")


def test_overrides_are_type_checked_like_file_values():
    table = {"seed": 1, "inner": {"gamma": 0.5}}
    out = apply_overrides(table, ["inner.gamma=0.25", "inner.variant=official", "name=run"])
    assert table["inner"]["gamma"] == 0.5  # input untouched
    cfg = build_dataclass(Outer, out)
    assert cfg.inner == Inner(gamma=0.25, variant="official") and cfg.name == "run"
    with pytest.raises(ConfigError, match="inner.gamma: expected a number"):
        build_dataclass(Outer, apply_overrides(table, ["inner.gamma=abc"]))
    with pytest.raises(ConfigError, match="is a value, not a table"):
        apply_overrides(table, ["seed.x=1"])


def test_hash_is_stable_and_order_independent():
    a = {"b": 1, "a": {"y": [1, 2], "x": "s"}}
    b = {"a": {"x": "s", "y": [1, 2]}, "b": 1}
    assert canonical_json(a) == canonical_json(b)
    assert config_hash(a) == config_hash(b)
    # Pinned: changing the canonical form renames every run directory, so it must be deliberate.
    assert canonical_json(Outer()) == (
        '{"flag":false,"inner":{"gamma":0.5,"variant":"inclusive"},"layers":["conv1"],'
        '"limit":null,"name":"x","seed":0}')
    assert config_hash(Outer()) == "986156ef8aba"
    assert config_hash(Outer(seed=1)) != config_hash(Outer())


def test_load_toml_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("a = [1,\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_toml(bad)
    good = tmp_path / "good.toml"
    good.write_text("[inner]\ngamma = 2.0\n")
    assert build_dataclass(Outer, load_toml(good)).inner.gamma == 2.0
