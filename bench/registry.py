"""One small generic registry, used for datasets, models, methods and metrics.

An object exists in the suite because its module registers it with one decorator that
carries all its metadata::

    @METHODS.register(summary="Spike Activation Map", model_kind="snn", temporal=True, ...)
    def sam(inp, params): ...

The registry name is the function name (or ``name=`` for objects without one, or for one
algorithm registered under several public names). Duplicates are rejected, unknown names get
a "did you mean" answer, and listings can be filtered by metadata. CLI listings, README
tables, run.json and test parametrizations are all derived from here.

Methods and metrics carry a typed spec (:class:`MethodSpec`, :class:`MetricSpec`): the one
list of their metadata fields. Registering builds the spec, so a missing, unknown or
ill-typed field fails at import time. Each field says where run.json records it
(:func:`record`):

- ``identity`` fields go to ``run.json["versions"]`` and into the run's hash: changing one
  (a new version, another summary) names a different run;
- ``role`` fields go to ``run.json["roles"]``: how the report presents the object (its part
  in the attack audit, its plot style, the methods it is compared with). No number depends
  on them, so they are not hashed;
- ``params`` (a type) is not recorded; the suite's parameter values are, in ``config``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Literal, TypeVar, get_args

from bench.config import to_plain
from bench.errors import BenchError, UnknownNameError
from bench.plugins import BUILTIN_SOURCE, current_source, load_plugins, registering_as

ModelKind = Literal["snn", "ann", "any"]
MetricOutput = Literal["scalar", "curve"]
MetricScope = Literal["explanation", "model"]
#: a metric's part in the attack-strength audit (:mod:`bench.attacks.audit`): accuracy under
#: the white-box attack, success rates of the white-box, transfer and random-noise attacks,
#: and the share of exactly-zero input gradients
AuditRole = Literal["accuracy", "whitebox", "transfer", "noise", "zero_gradient"]
AUDIT_ROLES: tuple[str, ...] = get_args(AuditRole)
#: what a metric may need besides the maps; the runner skips a metric whose needs it cannot meet
NEEDS = frozenset({"mask", "box", "model", "explainer", "step_mask"})
#: the documented metric categories in the report's column order; a metric may name another
#: category (it is reported after these)
METRIC_CATEGORIES = ("localization", "faithfulness", "sanity", "robustness", "complexity")

Part = Literal["identity", "role"]
#: a metric's part in the report's view over time (:mod:`bench.report.temporal`)
OverTime = Literal["step", "lag", "residual"]

def _field(part: Part, column: bool = False, **kw: Any) -> Any:
    """A spec field recorded in run.json's ``part`` (see the module doc); ``column``: a
    column of ``snnxai ls`` and of the README tables."""
    return dataclasses.field(metadata={"record": part, "column": column}, **kw)


def columns(spec: type) -> tuple[str, ...]:
    """The fields of spec type ``spec`` that listings show, besides name and summary."""
    return tuple(f.name for f in dataclasses.fields(spec) if f.metadata.get("column"))


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


def _check_common(spec: MethodSpec | MetricSpec) -> None:
    _check(isinstance(spec.summary, str) and bool(spec.summary.strip()), "summary must be a non-empty string")
    _check(isinstance(spec.version, str) and bool(spec.version), "version must be a non-empty string")
    _check(isinstance(spec.reference, str) and bool(spec.reference.strip()),
           "reference must name the paper (or say what the object is)")
    p = spec.params
    _check(p is None or (isinstance(p, type) and dataclasses.is_dataclass(p) and p.__dataclass_params__.frozen),
           "params must be a frozen dataclass type or None")


@dataclasses.dataclass(frozen=True)
class PlotStyle:
    """How the report draws a model-scope curve metric (accuracy and success rates vs eps).

    label: the legend text. color / linestyle: matplotlib colour and line style.
    param_label: the label to use instead when the run sets every suite parameter this
    format string names (e.g. ``"transfer success (crafted on {source})"``); "" = none.
    """

    label: str
    color: str
    linestyle: str = "-"
    param_label: str = ""


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """Metadata of an explanation method (see :mod:`methods.base` for the contract).

    model_kind: the model the method runs on: "snn", "ann" (the ANN twin of a probed SNN) or
        "any" (model-free baselines). temporal: returns one map per SNN time step
        (``[T, B, h, w]``) instead of ``[B, h, w]``. needs_grad / needs_label: uses
        backward passes / the class to explain. version: bump when the maps change.
    reference: the paper. baseline: a baseline every suite gets (shown in italics, last).
    params: the frozen dataclass of its tunable parameters (None: none).
    compare_with: report role: methods whose stability under attack the report compares with
        this one's, paired on the same samples (this method on the probed model vs the other
        on the model it runs on for that probe, e.g. SAM on an SNN vs Grad-CAM on its twin).
    attack_gallery: report role: shown in the clean-vs-attacked gallery (when none of a
        model's methods is, the gallery shows every method with attacked maps).
    cannot_run: ``cannot_run(card, params) -> reason`` ("" = it can) for a method that runs on
        only some models of its kind with these params (e.g. only on the suite's own spiking
        layers); the planner skips the other models' cells with that reason. None: every model
        of its kind.
    """

    summary: str = _field("identity")
    model_kind: ModelKind = _field("identity", column=True)
    temporal: bool = _field("identity", column=True)
    needs_grad: bool = _field("identity", column=True)
    needs_label: bool = _field("identity", column=True)
    version: str = _field("identity", column=True)
    reference: str = _field("identity")
    baseline: bool = _field("identity", default=False)
    params: type | None = None
    compare_with: tuple[str, ...] = _field("role", default=())
    attack_gallery: bool = _field("role", default=False)
    cannot_run: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        _check_common(self)
        _check(self.model_kind in get_args(ModelKind), f"model_kind must be one of {get_args(ModelKind)}")
        _check(self.cannot_run is None or callable(self.cannot_run), "cannot_run must be a function of (card, params)")
        for k in ("temporal", "needs_grad", "needs_label", "baseline", "attack_gallery"):
            _check(isinstance(getattr(self, k), bool), f"{k} must be a bool")
        _check(isinstance(self.compare_with, tuple) and all(isinstance(m, str) for m in self.compare_with),
               "compare_with must be a tuple of method names")


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """Metadata of a metric (see :mod:`metrics.base` for the contract).

    category: the family the report groups it in (:data:`METRIC_CATEGORIES`, or a new one).
    higher_is_better: its direction. needs: subset of :data:`NEEDS`. output: "scalar" or
    "curve" (scores over points: deletion fraction, eps, randomization stage).
    per_timestep: the runner also scores each time step's maps of temporal methods.
    scope: "explanation" (scored for every method's maps) or "model" (once per model,
    independent of any method; rows have an empty method). version: bump when scores change.
    reference: the paper. params: the frozen dataclass of its tunable parameters (None: none).
    attacked: its scores come from maps of attacked inputs (the runner saves those maps and
        the attacked inputs of the first such metric as gallery examples).
    audit_role: report role: its part in the attack audit (:data:`AuditRole`), or None.
    plot_style: report role: legend label, colour and line style of its model-scope curve
        (None: labelled by name, next tab10 colour, solid).
    step_figure: report role: shown in the per-time-step stability figure (when no metric of
        a run is, the figure shows every per-step robustness metric).
    headline: report role: one of the columns the discriminative-power section counts
        separated method pairs on (every scalar metric would cost a test per pair and column).
    over_time: report role: its part in the report's view over time: "step" (a per-step metric
        summarized over the steps), "lag" / "residual" (the tracking table's columns), or None.
    source_model: for a metric that crafts on another model, ``source_model(params) -> name``
        ("" = the probed model's twin); the planner checks that the model exists before any work
        and skips probed models that have none. None: the metric needs no other model.
    """

    summary: str = _field("identity")
    category: str = _field("identity", column=True)
    higher_is_better: bool = _field("identity", column=True)
    needs: frozenset[str] = _field("identity", column=True)
    output: MetricOutput = _field("identity", column=True)
    version: str = _field("identity", column=True)
    reference: str = _field("identity")
    scope: MetricScope = _field("identity", column=True, default="explanation")
    per_timestep: bool = _field("identity", default=False)
    params: type | None = None
    attacked: bool = _field("role", default=False)
    audit_role: AuditRole | None = _field("role", default=None)
    plot_style: PlotStyle | None = _field("role", default=None)
    step_figure: bool = _field("role", default=False)
    headline: bool = _field("role", default=False)
    over_time: OverTime | None = _field("role", default=None)
    source_model: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        _check_common(self)
        _check(isinstance(self.category, str) and self.category.isidentifier() and self.category.islower(),
               "category must be a lower-case identifier")
        for k in ("higher_is_better", "per_timestep", "attacked", "step_figure", "headline"):
            _check(isinstance(getattr(self, k), bool), f"{k} must be a bool")
        _check(isinstance(self.needs, frozenset) and self.needs <= NEEDS,
               f"needs must be a frozenset, subset of {sorted(NEEDS)}")
        _check(self.output in get_args(MetricOutput), f"output must be one of {get_args(MetricOutput)}")
        _check(self.scope in get_args(MetricScope), f"scope must be one of {get_args(MetricScope)}")
        _check(self.audit_role is None or self.audit_role in AUDIT_ROLES, f"audit_role must be one of {AUDIT_ROLES}")
        _check(self.plot_style is None or isinstance(self.plot_style, PlotStyle), "plot_style must be a PlotStyle")
        _check(self.over_time is None or self.over_time in get_args(OverTime), f"over_time must be one of {get_args(OverTime)}")
        _check(self.source_model is None or callable(self.source_model), "source_model must be a function of the params")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Metadata of a dataset family, checked against each instance it builds
    (:func:`bench.data.check_dataset`).

    masks / boxes: the family can give object masks / bounding boxes (a folder dataset whose
        box file is optional may build an instance without them; an instance never has what
        its family does not declare). source: "embedded" (generated or shipped with the
        project: nothing to download) or "folder" (read from a local folder the user provides).
    step_masks: a mask per time step (time-varying ground truth, ``Batch.step_mask``).
    time_varying: a sample is T steps of input (the instance has ``steps``).
    classes: the number of classes, where the family fixes it (None: its params or folder do).
    params: the frozen dataclass of its parameters (None: none).
    """

    summary: str = _field("identity")
    masks: bool = _field("identity", column=True)
    boxes: bool = _field("identity", column=True)
    source: Literal["embedded", "folder"] = _field("identity", column=True)
    step_masks: bool = _field("identity", default=False)
    time_varying: bool = _field("identity", default=False)
    classes: int | None = _field("identity", default=None)
    params: type | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.summary, str) and bool(self.summary.strip()), "summary must be a non-empty string")
        for k in ("masks", "boxes", "step_masks", "time_varying"):
            _check(isinstance(getattr(self, k), bool), f"{k} must be a bool")
        _check(self.source in ("embedded", "folder"), "source must be 'embedded' or 'folder'")
        _check(self.classes is None or (isinstance(self.classes, int) and self.classes >= 2),
               "classes must be an int >= 2 or None")
        _check(not self.step_masks or self.time_varying, "step_masks needs time_varying")
        p = self.params
        _check(p is None or (isinstance(p, type) and dataclasses.is_dataclass(p) and p.__dataclass_params__.frozen),
               "params must be a frozen dataclass type or None")


Spec = TypeVar("Spec", MethodSpec, MetricSpec, DatasetSpec, Any)


def _required(cls: type) -> list[str]:
    """The fields of spec type ``cls`` without a default."""
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def record(spec: MethodSpec | MetricSpec, part: Part) -> dict[str, object]:
    """The fields of ``spec`` that run.json records in ``part``, as plain JSON data (sets as
    sorted lists, tuples as lists, a :class:`PlotStyle` as a table)."""
    out = {}
    for f in dataclasses.fields(spec):
        if f.metadata.get("record") == part:
            v = getattr(spec, f.name)
            out[f.name] = sorted(v) if isinstance(v, frozenset) else to_plain(v)
    return out


@dataclasses.dataclass(frozen=True)
class Entry(Generic[Spec]):
    """A registered object and its one metadata record, ``spec``: a :class:`MethodSpec`,
    :class:`MetricSpec` or :class:`DatasetSpec`, or for a model its card (the object is its own
    spec). ``spec.params`` (where there is one) is the frozen dataclass type of the object's
    tunable parameters; ``make_params`` builds it from a config table with type checks.
    ``source``: the distribution that registered it (:data:`BUILTIN_SOURCE`, or a plugin's,
    :mod:`bench.plugins`).
    """

    name: str
    obj: Any
    spec: Spec
    source: str = BUILTIN_SOURCE

    @property
    def summary(self) -> str:
        text = getattr(self.spec, "summary", "")
        if text:
            return str(text)
        doc = getattr(self.obj, "__doc__", None) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def params_cls(self) -> type | None:
        return getattr(self.spec, "params", None)

    def make_params(self, table: dict[str, Any] | None = None) -> Any:
        """Build this entry's params dataclass from a (possibly partial) config table."""
        from bench.config import build_dataclass

        cls = self.params_cls
        if cls is None:
            if table:
                raise BenchError(f"{self.name!r} takes no parameters, got {sorted(table)}")
            return None
        return build_dataclass(cls, table or {}, where=self.name)

    def record(self, part: Part = "identity") -> dict[str, object]:
        """:func:`record` of this entry's spec (its run.json record)."""
        if self.spec is None:
            raise TypeError(f"{self.name!r} has no spec to record")
        return record(self.spec, part)


class Registry(Generic[Spec]):
    """A named collection of :class:`Entry` objects with filters on their specs.

    ``spec``: the spec dataclass every registration's metadata must build (methods, metrics,
    datasets); None: the registered object is its own spec (a model card), and registration
    takes no metadata. ``packages`` are imported (all submodules) on first lookup so that
    registrations run.
    """

    def __init__(self, kind: str, *, spec: type[Spec] | None = None, packages: tuple[str, ...] = ()):
        self.kind = kind
        self.spec = spec
        self.required = tuple(_required(spec)) if spec is not None else ()
        self.packages = packages
        self._entries: dict[str, Entry[Spec]] = {}
        self._loaded = False

    # -- registration -------------------------------------------------------------------
    def register(self, name: str | None = None, **meta: Any) -> Callable[[Any], Any]:
        """Decorator: register ``obj`` under ``name`` (default: its ``__name__``). Stack it to
        register one algorithm under several public names (one per model kind)."""

        def deco(obj: Any) -> Any:
            self.add(name or obj.__name__, obj, **meta)
            return obj

        return deco

    def add(self, name: str, obj: Any, **meta: Any) -> Entry[Spec]:
        """Register ``obj`` directly (for objects that are not functions, e.g. model cards)."""
        if name in self._entries:
            raise ValueError(f"duplicate {self.kind} {name!r}: already registered by "
                             f"{getattr(self._entries[name].obj, '__module__', '?')}")
        missing = [k for k in self.required if k not in meta]
        if missing:
            raise ValueError(f"{self.kind} {name!r} is missing metadata {missing}")
        if self.spec is None:  # the object is its own spec (a model card)
            if meta:
                raise ValueError(f"{self.kind} {name!r}: the object is its own spec; got metadata {sorted(meta)}")
            if not (dataclasses.is_dataclass(obj) and obj.__dataclass_params__.frozen
                    and getattr(obj, "name", name) == name):
                raise ValueError(f"{self.kind} {name!r} must be a frozen dataclass whose name is {name!r}")
            spec = obj
        else:
            known = [f.name for f in dataclasses.fields(self.spec)]
            unknown = sorted(set(meta) - set(known))
            if unknown:
                close = difflib.get_close_matches(unknown[0], known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"{self.kind} {name!r} has unknown metadata {unknown}{hint}")
            try:
                spec = self.spec(**meta)
            except ValueError as exc:
                raise ValueError(f"{self.kind} {name!r}: {exc}") from None
        entry = Entry(name, obj, spec, current_source())
        self._entries[name] = entry
        return entry

    @contextmanager
    def temporary(self, name: str, obj: Any, **meta: Any) -> Iterator[Entry[Spec]]:
        """Register ``obj`` for the duration of a ``with`` block (tests that register a
        throw-away method or metric; the registry is loaded first, so the name cannot clash
        with a module registering later)."""
        self._ensure_loaded()
        entry = self.add(name, obj, **meta)
        try:
            yield entry
        finally:
            self._entries.pop(name, None)

    # -- lookup -------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        """Whether the packages were imported (entries may since have been added in-process)."""
        return self._loaded

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        with registering_as(BUILTIN_SOURCE):  # also when a plugin's import is what triggered the load
            for pkg_name in self.packages:
                import_submodules(pkg_name)
        load_plugins(self, REGISTRIES)  # third-party entry points, after the built-ins

    def names_registered(self) -> list[str]:
        """The names registered so far, without loading the packages (for :mod:`bench.plugins`)."""
        return list(self._entries)

    def discard(self, name: str) -> None:
        """Remove ``name`` if registered (a failed plugin's partial registrations)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry[Spec]:
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

    def entries(self, **filters: Any) -> list[Entry[Spec]]:
        """Entries whose spec field equals every filter value (a list/tuple/set means "any of")."""
        self._ensure_loaded()
        out = []
        for e in self._entries.values():
            ok = True
            for k, want in filters.items():
                have = getattr(e.spec, k, None)
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

    def __iter__(self) -> Iterator[Entry[Spec]]:
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
DATASETS: Registry[DatasetSpec] = Registry("dataset", spec=DatasetSpec, packages=("bench.data",))
MODELS: Registry[Any] = Registry("model", packages=("bench.models",))  # a card is its own spec
METHODS: Registry[MethodSpec] = Registry("method", spec=MethodSpec, packages=("methods",))
METRICS: Registry[MetricSpec] = Registry("metric", spec=MetricSpec, packages=("metrics",))

REGISTRIES = {"datasets": DATASETS, "models": MODELS, "methods": METHODS, "metrics": METRICS}
