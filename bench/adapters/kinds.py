"""What each adapter knows about its library: which modules are spiking neurons, how to reset
one model's state, its neurons' parameters and membrane potentials.

Resets are per instance, never per class: snnTorch keeps every neuron ever built in the class
attribute ``SpikingNeuron.instances`` and its ``utils.reset`` / ``Leaky.reset_hidden`` reset
*all* of them (every model in the process); a Leaky called without ``mem`` reuses the state of
its previous call. The adapter zeroes this model's own neuron state before every call instead.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.adapters._kind import AdapterKind, ParamValue, scalar_param
from bench.adapters.spec import ADAPTERS
from bench.errors import BenchError

__all__ = ["AdapterKind", "ParamValue", "get_kind", "scalar_param"]

# -- snnTorch ---------------------------------------------------------------------------------
def _snntorch():
    try:
        import snntorch
    except ImportError:
        raise BenchError("adapter 'snntorch' needs snntorch: pip install 'snn-xai-bench[adapters]'") from None
    return snntorch


def _snn_is_neuron(m: nn.Module) -> bool:
    return isinstance(m, _snntorch().SpikingNeuron)


def _snn_reset(net: nn.Module) -> None:
    """Zero the state buffers (non-persistent: ``mem``, ``syn``, ``spk``...) of this model's
    snnTorch neurons, keeping shape and device (what ``reset_mem`` does, for every type)."""
    snn = _snntorch()
    for m in net.modules():
        if isinstance(m, snn.SpikingNeuron):
            for name in m._non_persistent_buffers_set:
                buf = getattr(m, name, None)
                if isinstance(buf, torch.Tensor):
                    setattr(m, name, torch.zeros_like(buf))


def _snn_params(m: nn.Module) -> dict[str, ParamValue]:
    out: dict[str, ParamValue] = {"type": type(m).__name__}
    for attr in ("beta", "alpha", "threshold"):
        v = scalar_param(getattr(m, attr, None))
        if v is not None:
            out[attr] = v
    for attr, key in (("_reset_mechanism", "reset"), ("init_hidden", "init_hidden")):
        v = scalar_param(getattr(m, attr, None))
        if v is not None:
            out[key] = v
    grad = getattr(m, "spike_grad", None)
    if grad is not None:
        out["surrogate"] = getattr(grad, "__qualname__", type(grad).__name__).split(".")[0]  # atan.<locals>.inner -> atan
    return out


def _snn_mem(m: nn.Module, output: object) -> torch.Tensor | None:
    """``(spk, mem)`` outputs carry it; an ``init_hidden`` neuron keeps it in ``m.mem``."""
    if isinstance(output, tuple) and len(output) >= 2 and isinstance(output[-1], torch.Tensor):
        return output[-1]
    mem = getattr(m, "mem", None)
    return mem if isinstance(mem, torch.Tensor) else None


SNNTORCH = AdapterKind("snntorch", _snn_is_neuron, _snn_reset, _snn_params, _snn_mem)


# -- a plain torch module ---------------------------------------------------------------------
def _plain_reset(net: nn.Module) -> None:
    """The user's own ``reset_state()`` if the model defines one; otherwise the model must
    create its state inside ``forward`` (the adapter's probe checks that it does)."""
    fn = getattr(net, "reset_state", None)
    if callable(fn):
        fn()


def _plain_params(m: nn.Module) -> dict[str, ParamValue]:
    out: dict[str, ParamValue] = {"type": type(m).__name__}
    for attr in ("beta", "leak", "tau", "threshold", "v_threshold"):
        v = scalar_param(getattr(m, attr, None))
        if v is not None:
            out[attr] = v
    return out


PLAIN = AdapterKind("plain", None, _plain_reset, _plain_params, None)


def get_kind(name: str) -> AdapterKind:
    """The adapter named ``name`` (one of :data:`ADAPTERS`)."""
    if name == "snntorch":
        _snntorch()
        return SNNTORCH
    if name == "spikingjelly":
        from bench.adapters import spikingjelly

        return spikingjelly.kind()
    if name == "plain":
        return PLAIN
    raise BenchError(f"unknown adapter {name!r} (known: {', '.join(ADAPTERS)})")
