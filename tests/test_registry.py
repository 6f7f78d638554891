"""The generic registry: decorator registration, duplicates, did-you-mean, filters."""

import dataclasses

import pytest

from bench.errors import BenchError, UnknownNameError
from bench.registry import REGISTRIES, Registry


def make_registry() -> Registry:
    reg = Registry("widget", required=("summary",))

    @reg.register(summary="a round widget", shape="round", size=1)
    def disk():
        """Docstring summary."""

    @reg.register(summary="a square widget", shape="square", size=2)
    def square():
        pass

    reg.add("ring", object(), summary="added directly", shape="round", size=3)
    return reg


def test_register_uses_function_name_and_metadata():
    reg = make_registry()
    assert reg.names() == ["disk", "ring", "square"]
    e = reg.get("disk")
    assert e.name == "disk" and e.meta["shape"] == "round" and e.summary == "a round widget"
    assert "square" in reg and "cube" not in reg
    assert len(reg) == 3


def test_duplicates_rejected():
    reg = make_registry()
    with pytest.raises(ValueError, match="duplicate widget 'disk'"):
        reg.add("disk", object(), summary="again")


def test_required_metadata_enforced():
    reg = Registry("widget", required=("summary", "version"))
    with pytest.raises(ValueError, match="missing metadata"):
        reg.add("x", object(), summary="no version")


def test_unknown_name_did_you_mean():
    reg = make_registry()
    with pytest.raises(UnknownNameError) as info:
        reg.get("sqare")
    msg = str(info.value)
    assert "did you mean 'square'" in msg and "\n" not in msg
    assert isinstance(info.value, BenchError)
    with pytest.raises(UnknownNameError, match="known: disk, ring, square"):
        reg.get("zzzzzz")


def test_filters():
    reg = make_registry()
    assert reg.names(shape="round") == ["disk", "ring"]
    assert reg.names(shape="round", size=3) == ["ring"]
    assert reg.names(size=[1, 2]) == ["disk", "square"]
    assert reg.names(shape="triangle") == []


def test_params_dataclass_built_with_type_checks():
    @dataclasses.dataclass(frozen=True)
    class P:
        gamma: float = 0.5
        variant: str = "inclusive"

    reg = Registry("thing")
    reg.add("t", object(), params=P)
    assert reg.get("t").make_params({"gamma": 1}) == P(gamma=1.0)
    with pytest.raises(BenchError, match="expected a number"):
        reg.get("t").make_params({"gamma": "high"})
    reg.add("u", object())
    assert reg.get("u").make_params(None) is None
    with pytest.raises(BenchError, match="takes no parameters"):
        reg.get("u").make_params({"x": 1})


def test_shipped_registries_have_consistent_names():
    """Every registered name in the suite is snake_case and equals its function's name."""
    for reg in REGISTRIES.values():
        for e in reg.entries():
            assert e.name == e.name.lower() and " " not in e.name and "-" not in e.name
            if callable(e.obj) and hasattr(e.obj, "__name__") and e.obj.__name__ != "<lambda>":
                if reg.kind in ("method", "metric", "dataset"):
                    assert e.obj.__name__ == e.name
