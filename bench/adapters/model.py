"""The adapted model: a user's SNN behind the suite's model protocol (see :mod:`bench.adapters`).

:class:`AdaptedSNN` owns the time loop the user's ``call`` style needs, the encoding, the
readout, the reset before (and after) every call, and the recording of the named layers
(:meth:`AdaptedSNN.recording`, which :func:`bench.models.record.record` dispatches to).
:func:`adapt` builds one and proves the protocol on a probe input: the named layers exist,
spike with ``[T, B, ...]`` outputs, the logits have the dataset's classes, and two calls on
the same input give the same logits (no state survives a call).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from bench.adapters.kinds import AdapterKind, ParamValue, get_kind
from bench.adapters.spec import ADAPTERS, UserModelSpec
from bench.adapters.taps import LayerMode, Tap, spikes_of
from bench.errors import BenchError, UnknownNameError
from bench.models.card import ModelCard, TrainParams
from bench.models.encoders import poisson
from bench.models.record import Recording


@dataclasses.dataclass(frozen=True)
class SpikingLayer:
    """A recordable layer as the card shows it: module path, call mode, one step's output
    shape for one sample (``[C, H, W]`` or ``[F]``) and the neuron's parameters."""

    name: str
    mode: str
    shape: tuple[int, ...]
    params: tuple[tuple[str, ParamValue], ...]


@dataclasses.dataclass(frozen=True)
class BatchNormLayer:
    """A normalization module of the user's model as the card shows it: module path, class,
    features and its settings."""

    name: str
    type: str
    num_features: int
    affine: bool
    track_running_stats: bool
    eps: float
    momentum: float | None


@dataclasses.dataclass(frozen=True)
class AdaptedCard(ModelCard):
    """A :class:`ModelCard` built from what the adapter found (``arch`` is the adapter name,
    ``target_layers`` the recordable layers, default first) plus the adapter's own facts:
    ``spec`` as the user gave it (``file``: the source file's name, without its folder, which
    ``snnxai compare`` ignores, and ``function``), each layer's
    neuron parameters, the normalization modules (``bn``: "batchnorm" when the model has any,
    else "none"; ``bn_layers`` each one), the parameter count, the weights' digest
    (:func:`bench.store.state_digest`), the sha256 of the checkpoint file's bytes ("" for the
    built weights) and of the source file's bytes (``spec.file`` only, not what it imports; ""
    when adapted from a module in memory). The digests are the model's identity: hashed into
    the run id (an edited model file is another run) and checked by ``snnxai compare``.

    It records only what the project knows: ``source`` is "user" (the project neither trained
    nor converted it), and ``train`` (the zoo's recipe, which never ran for this model) is
    left out of its plain data (run.json, the run hash); the field stays, at its default, only
    for code that reads any card's ``train.init``."""

    source: str = "user"  # type: ignore[assignment]
    bn: str = "none"  # type: ignore[assignment]
    train: TrainParams = dataclasses.field(default=TrainParams(), metadata={"omit_default": True})
    spec: UserModelSpec | None = None
    file: str = ""
    function: str = ""
    input: str = "normalized"
    layers: tuple[SpikingLayer, ...] = ()
    bn_layers: tuple[BatchNormLayer, ...] = ()
    n_params: int = 0
    weights_sha256: str = ""
    checkpoint_sha256: str = ""
    file_sha256: str = ""


class AdaptedSNN(nn.Module):
    """``model(x [B, C, H, W] normalized, sample_id=None, seed=0) -> logits [B, K]``.

    Encodes ``x`` into ``[T, B, C, H, W]`` (``spec.encoding``), runs the user's module in its
    ``spec.call`` style, reads out ``[B, K]`` (``spec.readout``), and resets the module's state
    before and after the call. ``.card``, ``.T`` and ``.layer_names()`` as every model has.
    """

    def __init__(self, net: nn.Module, kind: AdapterKind, spec: UserModelSpec, layers: dict[str, nn.Module],
                 input_stats: tuple[Sequence[float], Sequence[float]]):
        super().__init__()
        self.net, self.kind, self.spec, self.T = net, kind, spec, spec.T
        self._layers = layers            # a plain dict: not registered twice in the state dict
        self.modes: dict[str, LayerMode] = {}
        self.card: AdaptedCard = AdaptedCard(name="", kind="snn", arch=kind.name, dataset="", num_classes=0,
                                             input_size=0)  # replaced by adapt() once probed
        self._taps: list[Tap] = []
        self.register_buffer("input_mean", torch.tensor(list(input_stats[0])).view(-1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(list(input_stats[1])).view(-1, 1, 1), persistent=False)

    def layer_names(self) -> list[str]:
        """Recordable layers (module paths), in the order the card lists them."""
        return list(self._layers)

    def reset(self) -> None:
        self.kind.reset(self.net)

    def encode(self, x: torch.Tensor, sample_id: torch.Tensor | None, seed: int) -> torch.Tensor:
        """``x [B, C, H, W]`` -> ``[T, B, C, H, W]``: the analog image at every step ("direct"),
        or Bernoulli spikes of its [0, 1] intensities keyed by (seed, sample_id) ("rate", the
        keyed equivalent of snnTorch's ``spikegen.rate``). With ``spec.input = "pixels"`` the
        direct input is the [0, 1] image too."""
        if self.spec.encoding == "rate":
            sid = None if sample_id is None else torch.as_tensor(sample_id).reshape(-1)
            return poisson(self.pixels(x), self.T, sid, seed)
        x = self.pixels(x) if self.spec.input == "pixels" else x
        return x.unsqueeze(0).expand(self.T, *x.shape)

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The normalized image ``x`` back in [0, 1] pixels (``x * std + mean``)."""
        return x * self.input_std + self.input_mean

    def forward(self, x: torch.Tensor, sample_id: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        if x.dim() != 4:
            raise BenchError(f"{self.spec.source}: expected input [B, C, H, W], got {list(x.shape)}")
        self.reset()
        for tap in self._taps:
            tap.begin()
        try:
            out = self._run(x, sample_id, seed)
        finally:
            self.reset()  # no state (and no autograd graph) is kept past the call
        return self._readout(out, x.shape[0])

    def _run(self, x: torch.Tensor, sample_id: torch.Tensor | None, seed: int) -> object:
        call = self.spec.call
        if call == "image":
            return self.net(self.pixels(x) if self.spec.input == "pixels" else x)
        seq = self.encode(x, sample_id, seed)
        if call == "sequence":
            return self.net(seq)
        outs = [self._pick(self.net(seq[t])) for t in range(self.T)]
        return torch.stack(outs)

    def _pick(self, out: object) -> torch.Tensor:
        if isinstance(out, (tuple, list)):
            if self.spec.output >= len(out):
                raise BenchError(f"{self.spec.source}: output = {self.spec.output}, but the model returns "
                                 f"a tuple of {len(out)}")
            out = out[self.spec.output]
        if not isinstance(out, torch.Tensor):
            raise BenchError(f"{self.spec.source}: the model returned {type(out).__name__}, not a tensor")
        return out

    def _readout(self, out: object, B: int) -> torch.Tensor:
        y = self._pick(out)
        if y.dim() == 2 and y.shape[0] == B:  # the model reduced time itself
            return y
        if y.dim() == 3 and y.shape[:2] == (self.T, B):
            return {"mean": lambda: y.mean(0), "sum": lambda: y.sum(0), "last": lambda: y[-1]}[self.spec.readout]()
        raise BenchError(f"{self.spec.source}: output of shape {list(y.shape)} is neither [T={self.T}, B={B}, K] "
                         f"nor [B={B}, K]")

    @contextlib.contextmanager
    def recording(self, layers: Sequence[str], *, mem: bool = False, grad: bool = False) -> Iterator[Recording]:
        """:func:`bench.models.record.record` for this model: ``rec.spikes[name]`` ``[T, B, ...]``
        after each forward; hooks are removed on exit, exceptions included."""
        for n in layers:
            if n not in self._layers:
                close = difflib.get_close_matches(n, list(self._layers), n=2, cutoff=0.5)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise UnknownNameError(f"{self.spec.source} has no recordable layer {n!r}{hint} "
                                       f"(layers: {', '.join(self._layers)})")
        if mem and self.kind.mem is None:
            raise BenchError(f"adapter {self.kind.name!r} cannot read membrane potentials")
        rec = Recording()
        taps = [Tap(n, self.T, self.modes.get(n, "step"), rec, self.kind.mem if mem else None, grad)
                for n in layers]
        handles = []
        try:
            for tap in taps:
                handles.append(self._layers[tap.name].register_forward_hook(tap.hook))
            self._taps.extend(taps)
            yield rec
        finally:
            for h in handles:
                h.remove()
            for tap in taps:
                self._taps.remove(tap)


def find_layers(net: nn.Module, kind: AdapterKind, names: Sequence[str], source: str) -> dict[str, nn.Module]:
    """The recordable layers: the user's module paths, else every neuron the library knows."""
    modules = dict(net.named_modules())
    if names:
        out = {}
        for n in names:
            if n not in modules or n == "":
                paths = [p for p in modules if p]
                close = difflib.get_close_matches(n, paths, n=2, cutoff=0.5)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise BenchError(f"{source}: no module {n!r}{hint}")
            if kind.is_neuron is not None and not kind.is_neuron(modules[n]):
                raise BenchError(f"{source}: {n!r} is a {type(modules[n]).__name__}, not a {kind.name} "
                                 "spiking neuron")
            out[n] = modules[n]
        return out
    if kind.is_neuron is None:
        raise BenchError(f"adapter {kind.name!r} cannot find spiking layers by itself: name them with "
                         "layers = [...] (module paths)")
    out = {n: m for n, m in modules.items() if n and kind.is_neuron(m)}
    if not out:
        raise BenchError(f"{source}: the {kind.name} adapter finds no spiking layer in this model"
                         + _adapter_hint(net, kind.name))
    return out


def _adapter_hint(net: nn.Module, tried: str) -> str:
    """Which other adapter finds spiking layers in ``net`` (found by trying each one whose
    library imports), as the hint an error ends with; else how to name the layers."""
    for name in ADAPTERS:
        if name == tried:
            continue
        try:
            other = get_kind(name)
        except BenchError:  # its library is not installed: it cannot have built this model's neurons
            continue
        if other.is_neuron is None:
            continue
        found = [n for n, m in net.named_modules() if n and other.is_neuron(m)]
        if found:
            more = f", ... ({len(found)} in all)" if len(found) > 3 else ""
            return (f"; the {name} adapter finds {', '.join(found[:3])}{more} (try --adapter {name}; "
                    f"adapter = \"{name}\" in a suite file)")
    return "; no adapter finds one: name them with --adapter plain and --model-param 'layers=[\"...\"]'"


def _batchnorms(net: nn.Module) -> tuple[BatchNormLayer, ...]:
    """Every BatchNorm module of ``net`` (``torch.nn`` BatchNorm1d/2d/3d, SyncBatchNorm and
    their subclasses, e.g. SpikingJelly's ``layer.BatchNorm2d``), in module order."""
    return tuple(BatchNormLayer(n, type(m).__name__, int(m.num_features), bool(m.affine),
                                bool(m.track_running_stats), float(m.eps),
                                None if m.momentum is None else float(m.momentum))
                 for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))


def _probe(model: AdaptedSNN, x: torch.Tensor,
           ids: torch.Tensor) -> tuple[dict[str, LayerMode], dict[str, tuple[int, ...]], torch.Tensor, torch.Tensor]:
    """The layers' call modes and shapes, and two calls' logits on the probe input."""
    modes, shapes = _modes(model, x, ids)
    model.modes = modes
    with torch.no_grad():
        first, second = model(x, sample_id=ids, seed=0), model(x, sample_id=ids, seed=0)
    return modes, shapes, first, second


def _call_hint(net: nn.Module, kind: AdapterKind, spec: UserModelSpec, layers: dict[str, nn.Module],
               input_stats: tuple[Sequence[float], Sequence[float]], x: torch.Tensor, ids: torch.Tensor,
               num_classes: int) -> str:
    """The ``call`` styles other than ``spec.call`` under which ``net`` passes the probe (found
    by running it in each), as the hint an error ends with ("" when none does)."""
    works = []
    for call in ("sequence", "step", "image"):
        if call == spec.call:
            continue
        other = dataclasses.replace(spec, call=call)
        try:
            if kind.check is not None:
                kind.check(net, layers, other)
            _, _, first, second = _probe(AdaptedSNN(net, kind, other, layers, input_stats), x, ids)
        except Exception:  # noqa: BLE001 -- any failure means: not this call style
            continue
        finally:
            kind.reset(net)
        if first.shape == (x.shape[0], num_classes) and torch.equal(first, second):
            works.append(call)
    if not works:
        return ""
    return f" (try --model-param call={works[0]}; call = \"{works[0]}\" in a suite file)"


def _probe_input(channels: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two fixed normalized images ``[2, C, H, W]`` and their sample ids (the global RNG is untouched)."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, channels, size, size, generator=g), torch.tensor([0, 1])


def _modes(model: AdaptedSNN, x: torch.Tensor, ids: torch.Tensor) -> tuple[dict[str, LayerMode], dict[str, tuple[int, ...]]]:
    """Run once, counting each layer's calls: T calls -> "step", one call -> "multi"/"folded"."""
    calls: dict[str, list[tuple[int, ...]]] = {n: [] for n in model.layer_names()}
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: calls[n].append(tuple(spikes_of(o).shape)))
               for n, m in model._layers.items()]
    try:
        with torch.no_grad():
            model(x, sample_id=ids, seed=0)
    finally:
        for h in handles:
            h.remove()
    T, B, src = model.T, x.shape[0], model.spec.source
    modes, shapes = {}, {}
    for n, seen in calls.items():
        if len(seen) == T and all(s[:1] == (B,) for s in seen):
            modes[n], shapes[n] = "step", seen[0][1:]
        elif len(seen) == 1 and seen[0][:2] == (T, B):
            modes[n], shapes[n] = "multi", seen[0][2:]
        elif len(seen) == 1 and seen[0][0] == T * B:
            modes[n], shapes[n] = "folded", seen[0][1:]
        elif not seen:
            raise BenchError(f"{src}: layer {n!r} is never called by the model's forward")
        else:
            raise BenchError(f"{src}: layer {n!r} ran {len(seen)} times with outputs {list(seen[0])} in one "
                             f"call of T={T}; expected T calls of [B, ...] or one of [T, B, ...]")
    return modes, shapes


def adapt(net: nn.Module, spec: UserModelSpec, *, name: str, dataset: str, num_classes: int, channels: int, size: int,
          input_stats: tuple[Sequence[float], Sequence[float]], file_sha256: str = "",
          checkpoint_sha256: str = "") -> AdaptedSNN:
    """Wrap ``net`` (weights loaded) and prove the protocol on a probe input; sets ``.card``
    (``file_sha256``: the digest of the file ``net`` was built from, ``checkpoint_sha256``: of
    the checkpoint file its weights were loaded from, "" for none). A probe that fails names
    the ``call`` style under which the model would pass, if one does (tried)."""
    from bench.store import state_digest

    kind = get_kind(spec.adapter)
    net = net.eval()
    model = AdaptedSNN(net, kind, spec, find_layers(net, kind, spec.layers, spec.source), input_stats)
    if kind.check is not None:
        kind.check(net, model._layers, spec)
    x, ids = _probe_input(channels, size)

    def hint() -> str:
        return _call_hint(net, kind, spec, model._layers, input_stats, x, ids, num_classes)

    try:
        _, shapes, first, second = _probe(model, x, ids)
    except BenchError as exc:  # a layer called neither per step nor per sequence, an output of the wrong shape
        raise BenchError(f"{exc}{hint()}") from None
    except Exception as exc:  # the user's forward failed on an input of the dataset's shape
        raise BenchError(f"{spec.source}: the model fails on input [2, {channels}, {size}, {size}] "
                         f"(T={spec.T}, call={spec.call!r}): {type(exc).__name__}: {exc}{hint()}") from None
    if first.shape != (2, num_classes):
        raise BenchError(f"{spec.source}: logits {list(first.shape)}, but dataset {dataset!r} has "
                         f"{num_classes} classes{hint()}")
    if not torch.equal(first, second):
        raise BenchError(f"{spec.source}: two calls on the same input give different logits: the model "
                         "keeps state between calls (create it inside forward, or give it reset_state())")
    names = model.layer_names()
    spatial = [n for n in names if len(shapes[n]) == 3]
    default = names[0] if spec.layers else (spatial[-1] if spatial else names[-1])
    layers = tuple(SpikingLayer(n, model.modes[n], shapes[n], tuple(kind.params(model._layers[n]).items()))
                   for n in names)
    bns = _batchnorms(net)
    model.card = AdaptedCard(
        name=name, kind="snn", arch=kind.name, dataset=dataset, num_classes=num_classes,
        input_size=size, in_channels=channels, T=spec.T,
        encoding="poisson" if spec.encoding == "rate" and spec.call != "image" else "direct",
        neuron=None, bn="batchnorm" if bns else "none", twin=None, source="user",
        target_layers=(default, *[n for n in names if n != default]),
        summary=f"{spec.source} via the {kind.name} adapter",
        spec=spec, file=Path(spec.file).name, function=spec.function, input=spec.input, layers=layers, bn_layers=bns,
        n_params=sum(p.numel() for p in net.parameters()), weights_sha256=state_digest(net),
        checkpoint_sha256=checkpoint_sha256, file_sha256=file_sha256)
    return model
