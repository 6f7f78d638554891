"""The generic registry: decorator registration, duplicates, did-you-mean, filters."""

import dataclasses
import json
from pathlib import Path

import pytest

from bench.errors import BenchError, UnknownNameError
from bench.registry import METHODS, METRICS, REGISTRIES, MethodSpec, MetricSpec, PlotStyle, Registry, record

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class WidgetSpec:
    """A test registry's one metadata record."""

    summary: str
    shape: str = ""
    size: int = 0
    version: str = ""
    params: type | None = None


@dataclasses.dataclass(frozen=True)
class VersionedSpec:
    summary: str
    version: str


def make_registry() -> Registry:
    reg = Registry("widget", spec=WidgetSpec)

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
    assert e.name == "disk" and e.spec.shape == "round" and e.summary == "a round widget"
    assert "square" in reg and "cube" not in reg
    assert len(reg) == 3


def test_duplicates_rejected():
    reg = make_registry()
    with pytest.raises(ValueError, match="duplicate widget 'disk'"):
        reg.add("disk", object(), summary="again")


def test_required_metadata_enforced():
    reg = Registry("widget", spec=VersionedSpec)
    with pytest.raises(ValueError, match="missing metadata"):
        reg.add("x", object(), summary="no version")


def test_an_object_that_is_its_own_spec():
    """A model card is its own spec: registered without metadata, under its own name."""
    @dataclasses.dataclass(frozen=True)
    class Card:
        name: str
        kind: str
        summary: str = ""

    reg = Registry("card")
    reg.add("a", Card("a", "snn", "first"))
    assert reg.get("a").spec is reg.get("a").obj and reg.names(kind="snn") == ["a"] and reg.get("a").summary == "first"
    with pytest.raises(ValueError, match="own spec"):
        reg.add("b", Card("b", "ann"), kind="ann")
    with pytest.raises(ValueError, match="whose name is 'c'"):
        reg.add("c", Card("b", "ann"))


def test_a_dataset_instance_must_match_its_spec():
    import types

    from bench.data import check_dataset
    from bench.registry import DatasetSpec

    spec = DatasetSpec(summary="s", masks=False, boxes=True, source="folder", classes=10)
    ok = types.SimpleNamespace(has_masks=False, has_boxes=False, has_step_masks=False, num_classes=10)
    check_dataset("d", spec, ok)  # an optional box file may be absent
    with pytest.raises(RuntimeError, match=r"\['masks', 'time_varying', 'classes'\]"):
        check_dataset("d", spec, types.SimpleNamespace(has_masks=True, has_boxes=True, has_step_masks=False,
                                                       num_classes=3, steps=8))
    with pytest.raises(ValueError, match="step_masks needs time_varying"):
        DatasetSpec(summary="s", masks=True, boxes=True, source="embedded", step_masks=True)


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

    reg = Registry("thing", spec=WidgetSpec)
    reg.add("t", object(), summary="t", params=P)
    assert reg.get("t").make_params({"gamma": 1}) == P(gamma=1.0)
    with pytest.raises(BenchError, match="expected a number"):
        reg.get("t").make_params({"gamma": "high"})
    reg.add("u", object(), summary="u")
    assert reg.get("u").make_params(None) is None
    with pytest.raises(BenchError, match="takes no parameters"):
        reg.get("u").make_params({"x": 1})


def test_shipped_registries_have_consistent_names():
    """Every registered name in the suite is snake_case and equals its function's name; an
    algorithm registered for both model kinds is named ``<kind>_<function name>``."""
    for reg in REGISTRIES.values():
        for e in reg.entries():
            assert e.name == e.name.lower() and " " not in e.name and "-" not in e.name
            if callable(e.obj) and hasattr(e.obj, "__name__") and e.obj.__name__ != "<lambda>":
                if reg.kind in ("metric", "dataset"):
                    assert e.obj.__name__ == e.name
                if reg.kind == "method":
                    assert e.name in (e.obj.__name__, f"{e.spec.model_kind}_{e.obj.__name__}")


def test_one_algorithm_registered_for_both_model_kinds():
    """Saliency and integrated gradients are one function each, under an ANN and an SNN name
    whose specs differ only in the model kind and the summary."""
    for algo in ("saliency", "integrated_gradients"):
        ann, snn = METHODS.get(f"ann_{algo}"), METHODS.get(f"snn_{algo}")
        assert ann.obj is snn.obj and ann.obj.__name__ == algo
        assert (ann.spec.model_kind, snn.spec.model_kind) == ("ann", "snn")
        assert dataclasses.replace(ann.spec, model_kind="snn", summary=snn.spec.summary) == snn.spec


def _method_meta(**over):
    meta = dict(summary="s", model_kind="snn", temporal=False, needs_grad=False, needs_label=False,
                version="1", reference="r")
    return {**meta, **over}


def test_spec_registry_validates_fields():
    reg = Registry("method", spec=MethodSpec)
    with pytest.raises(ValueError, match=r"method 'x' is missing metadata \['version'\]"):
        reg.add("x", object(), **{k: v for k, v in _method_meta().items() if k != "version"})
    with pytest.raises(ValueError, match=r"unknown metadata \['temporall'\] \(did you mean 'temporal'\?\)"):
        reg.add("x", object(), **_method_meta(temporall=True))
    with pytest.raises(ValueError, match="method 'x': model_kind must be one of"):
        reg.add("x", object(), **_method_meta(model_kind="cnn"))
    with pytest.raises(ValueError, match="temporal must be a bool"):
        reg.add("x", object(), **_method_meta(temporal=1))
    e = reg.add("x", object(), **_method_meta())
    assert e.spec == MethodSpec(**_method_meta()) and e.spec.baseline is False and reg.names() == ["x"]
    metric = dict(summary="s", category="new_family", higher_is_better=True, needs=frozenset({"model"}),
                  output="curve", version="1", reference="r")
    mreg = Registry("metric", spec=MetricSpec)
    with pytest.raises(ValueError, match="needs must be a frozenset"):
        mreg.add("m", object(), **{**metric, "needs": frozenset({"labels"})})
    with pytest.raises(ValueError, match="audit_role must be one of"):
        mreg.add("m", object(), **metric, audit_role="oracle")
    with pytest.raises(ValueError, match="category must be a lower-case identifier"):
        mreg.add("m", object(), **{**metric, "category": "New Family"})
    assert mreg.add("m", object(), **metric).spec.scope == "explanation"  # a new category is fine


def test_record_splits_identity_from_report_roles():
    spec = MetricSpec(summary="s", category="robustness", higher_is_better=False,
                      needs=frozenset({"model", "explainer"}), output="curve", version="2", reference="r",
                      audit_role="noise", plot_style=PlotStyle("noise", "tab:gray", "--"))
    assert record(spec, "identity") == {
        "summary": "s", "category": "robustness", "higher_is_better": False, "needs": ["explainer", "model"],
        "output": "curve", "version": "2", "reference": "r", "scope": "explanation", "per_timestep": False}
    assert record(spec, "role") == {
        "attacked": False, "audit_role": "noise", "step_figure": False, "headline": False, "over_time": None,
        "plot_style": {"label": "noise", "color": "tab:gray", "linestyle": "--", "param_label": ""}}
    for field in ("params", "source_model"):  # types and functions: the planner's, never recorded
        assert field not in record(spec, "identity") and field not in record(spec, "role")


@pytest.mark.parametrize("run", ["default", "robustness"])
def test_identity_records_match_the_committed_runs(run):
    """The specs' identity fields are hashed into the run id: the committed runs' records must
    be exactly what the registry records today, or the same suite would name another run."""
    versions = json.loads((ROOT / "results" / run / "run.json").read_text())["versions"]
    for kind, reg in (("methods", METHODS), ("metrics", METRICS)):
        for name, recorded in versions[kind].items():
            assert reg.get(name).record() == recorded, (kind, name)


def test_temporary_registration_is_undone():
    n = len(METRICS)
    with METRICS.temporary("tmp_metric", lambda inp, params: None, summary="s", category="tmp",
                           higher_is_better=True, needs=frozenset(), output="scalar", version="1",
                           reference="r") as e:
        assert METRICS.get("tmp_metric") is e and len(METRICS) == n + 1
    assert "tmp_metric" not in METRICS and len(METRICS) == n


def test_report_roles_name_registered_objects():
    """A method's ``compare_with`` names registered methods; each audit role has one metric."""
    for e in METHODS:
        assert all(m in METHODS and m != e.name for m in e.spec.compare_with), e.name
    roles = [e.spec.audit_role for e in METRICS if e.spec.audit_role is not None]
    assert sorted(roles) == sorted(set(roles))
