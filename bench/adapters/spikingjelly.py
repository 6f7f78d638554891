"""The SpikingJelly adapter (``adapter = "spikingjelly"``): models built from
``spikingjelly.activation_based`` neurons, in either step mode.

* Spiking layers: every module whose class is (or derives from) a class of the
  ``spikingjelly.activation_based.neuron`` package -- ``IFNode``, ``LIFNode``,
  ``ParametricLIFNode``, the PSN family, a user's ``BaseNode`` subclass -- except the
  ``NonSpiking*`` read-out nodes, which emit membrane potentials, not spikes.
* Step modes: a neuron in ``step_mode = "s"`` is called once per time step with ``[B, ...]``
  (``call = "step"``, or the user's own loop with ``call = "sequence"``); one in
  ``step_mode = "m"`` once per forward with ``[T, B, ...]`` (``call = "sequence"`` or
  ``"image"``). Feeding a multi-step neuron one step at a time would make it read the batch
  as time, so ``call = "step"`` with an ``"m"`` neuron is refused before the model runs.
* Reset: ``functional.reset_net(net)`` before and after every call. It resets the modules of
  this ``net`` only (SpikingJelly keeps no class-level list of neurons, unlike snnTorch).
* Membrane: a neuron keeps its post-reset membrane in ``.v`` (``[B, ...]`` after a step) and,
  with ``store_v_seq = True`` in multi-step mode, every step's in ``.v_seq`` (``[T, B, ...]``).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.adapters._kind import AdapterKind, ParamValue, scalar_param
from bench.adapters.spec import UserModelSpec
from bench.errors import BenchError

#: the package whose classes are SpikingJelly's spiking neurons
NEURON_PACKAGE = "spikingjelly.activation_based.neuron"


def _functional():
    try:
        from spikingjelly.activation_based import functional
    except ImportError:
        raise BenchError("adapter 'spikingjelly' needs spikingjelly: "
                         "pip install 'snn-xai-bench[adapters]'") from None
    return functional


def is_neuron(m: nn.Module) -> bool:
    """A SpikingJelly spiking neuron: a class of the neuron package in ``m``'s MRO, none of
    them a non-spiking read-out node."""
    mro = type(m).__mro__
    return (any(c.__module__.startswith(NEURON_PACKAGE) for c in mro)
            and not any("NonSpiking" in c.__name__ for c in mro))


def reset(net: nn.Module) -> None:
    """Reset every stateful module of ``net`` (its neurons' ``v``, a PSN's buffers, ...)."""
    _functional().reset_net(net)


def params(m: nn.Module) -> dict[str, ParamValue]:
    """The card's view of one neuron: type, step mode, tau / threshold / reset, surrogate
    (a ParametricLIFNode's tau is its learned ``1 / sigmoid(w)``)."""
    out: dict[str, ParamValue] = {"type": type(m).__name__}
    for attr, key in (("step_mode", "step_mode"), ("tau", "tau"), ("v_threshold", "threshold"),
                      ("decay_input", "decay_input"), ("detach_reset", "detach_reset")):
        v = scalar_param(getattr(m, attr, None))
        if v is not None:
            out[key] = v
    w = getattr(m, "w", None)
    if "tau" not in out and isinstance(w, torch.Tensor) and "ParametricLIF" in type(m).__name__:
        with torch.no_grad():  # ParametricLIFNode learns w, and its tau is 1 / sigmoid(w)
            tau = scalar_param(1.0 / w.sigmoid())
        if tau is not None:
            out["tau"] = tau
    if hasattr(m, "v_reset"):  # None: subtract the threshold ("soft"); a value: set v to it ("hard")
        v_reset = m.v_reset
        out["reset"] = "subtract" if v_reset is None else f"to {float(v_reset)}"
    surrogate = getattr(m, "surrogate_function", None)
    if isinstance(surrogate, nn.Module):
        out["surrogate"] = type(surrogate).__name__
        alpha = scalar_param(getattr(surrogate, "alpha", None))
        if alpha is not None:
            out["surrogate_alpha"] = alpha
    return out


def mem(m: nn.Module, output: object) -> torch.Tensor | None:
    """The membrane after the call: ``v_seq`` ``[T, B, ...]`` of a multi-step neuron that stores
    it, else ``v`` ``[B, ...]`` of a single-step neuron (None: not kept)."""
    if getattr(m, "step_mode", "s") == "m":
        seq = getattr(m, "v_seq", None)
        return seq if isinstance(seq, torch.Tensor) else None
    v = getattr(m, "v", None)
    return v if isinstance(v, torch.Tensor) else None


def check(net: nn.Module, layers: dict[str, nn.Module], spec: UserModelSpec) -> None:
    """Refuse ``call = "step"`` on a model with multi-step neurons (they would read the batch
    axis as time)."""
    if spec.call != "step":
        return
    multi = [n for n, m in net.named_modules() if n and is_neuron(m) and getattr(m, "step_mode", "s") == "m"]
    if multi:
        raise BenchError(f"{spec.source}: call = \"step\" feeds one time step [B, ...] per call, but neuron "
                         f"{multi[0]!r} is in step_mode 'm' (it would read the batch as time): use call = "
                         "\"sequence\", or functional.set_step_mode(net, 's') in the builder")


SPIKINGJELLY = AdapterKind("spikingjelly", is_neuron, reset, params, mem, check)


def kind() -> AdapterKind:
    """The adapter, after checking that SpikingJelly imports."""
    _functional()
    return SPIKINGJELLY
