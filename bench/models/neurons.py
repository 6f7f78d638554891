"""Spiking neurons as pure functions: surrogate spike functions and the multi-step LIF.

Dynamics (the paper's BNTT code; snnTorch ``Leaky(reset_delay=False)`` for inputs below threshold)::

    u_t = leak * v_{t-1} + I_t          (v_{-1} = init * threshold, 0 by default: state is
                                         created inside every call)
    s_t = 1[u_t > threshold]            (strict, as the paper's code and snnTorch)
    v_t = u_t - s_t * threshold         reset "subtract"
    v_t = u_t * (1 - s_t)               reset "zero"

leak 1.0 is the IF neuron. The reset signal ``s_t`` is detached in the reset path, as in the
paper's code and in snnTorch (the surrogate gradient flows through the spike output only).
Nothing depends on ``train()``/``eval()``: input gradients stay non-zero in eval mode.

Surrogates give ``ds/du = f(x) / threshold`` with ``x = u / threshold - 1`` (normalized distance
to threshold); ``scale`` is each surrogate's own shape parameter:

* ``pwl``: ``f(x) = scale * max(0, 1 - |x|)`` -- the paper's ``0.3 * max(0, 1 - |u/theta - 1|)``
  with scale 0.3 (the paper writes it for threshold 1, where ``1/threshold`` is 1).
* ``atan``: ``f(x) = (scale / 2) / (1 + (pi/2 * scale * x)^2)`` -- snnTorch's ``atan(alpha=scale)``.
* ``fast_sigmoid``: ``f(x) = 1 / (scale * |x| + 1)^2`` -- snnTorch's ``fast_sigmoid(slope=scale)``.
"""

from __future__ import annotations

import math

import torch

from bench.errors import BenchError


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside ``1[u > threshold]`` forward; ``grad * f(u/threshold - 1) / threshold`` backward.

    Subclasses define ``shape_(x, scale)``: ``f(x)`` computed in place in ``x`` (the fused LIF
    backward works on ``[T, N, ...]`` buffers, where fresh allocations dominate the cost).
    """

    @staticmethod
    def shape_(x: torch.Tensor, scale: float) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def shape(cls, x: torch.Tensor, scale: float) -> torch.Tensor:
        """``f(x)`` (out of place)."""
        return cls.shape_(x.clone(), scale)

    @classmethod
    def forward(cls, ctx, u: torch.Tensor, threshold: float, scale: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.threshold, ctx.scale = threshold, scale
        return (u > threshold).to(u.dtype)

    @classmethod
    def backward(cls, ctx, grad_out: torch.Tensor):
        (u,) = ctx.saved_tensors
        x = u / ctx.threshold - 1.0
        return grad_out * cls.shape_(x, ctx.scale) / ctx.threshold, None, None


class PiecewiseLinearSpike(_SurrogateSpike):
    """The paper's surrogate: ``scale * max(0, 1 - |x|)``."""

    @staticmethod
    def shape_(x: torch.Tensor, scale: float) -> torch.Tensor:
        return x.abs_().neg_().add_(1.0).clamp_(min=0.0).mul_(scale)


class ATanSpike(_SurrogateSpike):
    """Arc-tangent surrogate (Fang et al. 2021; snnTorch ``atan``)."""

    @staticmethod
    def shape_(x: torch.Tensor, scale: float) -> torch.Tensor:
        return x.mul_(math.pi / 2.0 * scale).square_().add_(1.0).reciprocal_().mul_(scale / 2.0)


class FastSigmoidSpike(_SurrogateSpike):
    """Fast-sigmoid surrogate (SuperSpike, Zenke & Ganguli 2018; snnTorch ``fast_sigmoid``)."""

    @staticmethod
    def shape_(x: torch.Tensor, scale: float) -> torch.Tensor:
        return x.abs_().mul_(scale).add_(1.0).square_().reciprocal_()


SURROGATES: dict[str, type[_SurrogateSpike]] = {
    "pwl": PiecewiseLinearSpike,
    "atan": ATanSpike,
    "fast_sigmoid": FastSigmoidSpike,
}


def spike(u: torch.Tensor, threshold: float, surrogate: str, scale: float) -> torch.Tensor:
    """``1[u > threshold]`` (same shape as ``u``) with the named surrogate gradient."""
    try:
        fn = SURROGATES[surrogate]
    except KeyError:
        raise BenchError(f"unknown surrogate {surrogate!r} (known: {', '.join(SURROGATES)})") from None
    return fn.apply(u, float(threshold), float(scale))


class _LIF(torch.autograd.Function):
    """Fused multi-step LIF: forward without an autograd graph, hand-written BPTT backward.

    Backward of the dynamics in the module docstring (reset detached)::

        dL/du_t = dL/ds_t * f(u_t/theta - 1)/theta + leak * r_t * dL/du_{t+1},   dL/dI_t = dL/du_t

    with ``r_t = 1`` (subtract) or ``1 - s_t`` (zero). This equals autograd through the
    step-by-step form with :func:`spike` (pinned by a test) at a fraction of its cost.
    """

    @staticmethod
    def forward(ctx, inputs, leak, threshold, reset, surrogate, scale, init):
        # Written into preallocated buffers: [T, N, ...] temporaries would dominate the cost.
        mem = torch.empty_like(inputs)
        spikes = torch.empty_like(inputs)
        v = torch.full_like(inputs[0], init * threshold)
        for t in range(inputs.shape[0]):
            u, s = mem[t], spikes[t]
            torch.add(inputs[t], v, alpha=leak, out=u)
            torch.gt(u, threshold, out=s)
            if reset == "subtract":
                torch.sub(u, s, alpha=threshold, out=v)
            else:
                torch.mul(u, 1.0 - s, out=v)
        ctx.save_for_backward(mem, spikes)
        ctx.params = (leak, threshold, reset, surrogate, scale)
        ctx.mark_non_differentiable(mem)
        return spikes, mem

    @staticmethod
    def backward(ctx, grad_spikes, _grad_mem):
        mem, spikes = ctx.saved_tensors
        leak, threshold, reset, surrogate, scale = ctx.params
        grad = SURROGATES[surrogate].shape_(mem.div(threshold).sub_(1.0), scale).mul_(grad_spikes)
        if threshold != 1.0:
            grad.div_(threshold)
        # Accumulate backwards in place: grad[t] += leak * r_t * grad[t+1] (r_t = 1 - s_t for a zero reset).
        for t in range(grad.shape[0] - 2, -1, -1):
            if reset == "subtract":
                grad[t].add_(grad[t + 1], alpha=leak)
            else:
                grad[t].addcmul_(grad[t + 1], 1.0 - spikes[t], value=leak)
        return grad, None, None, None, None, None, None


def lif_multistep(inputs: torch.Tensor, leak: float, threshold: float, reset: str = "subtract",
                  surrogate: str = "pwl", scale: float = 0.3, return_mem: bool = False, init: float = 0.0):
    """Run a LIF population over time.

    inputs: ``[T, N, ...]`` input currents; ``init``: the membrane before the first step, as a
    fraction of the threshold (a constant: no gradient flows into it). Returns spikes ``[T, N, ...]`` (0/1, inputs' dtype),
    or ``(spikes, mem)`` with ``mem`` ``[T, N, ...]`` the pre-reset membrane ``u_t`` compared
    with the threshold (returned without gradient), when ``return_mem``.
    """
    if reset not in ("subtract", "zero"):
        raise BenchError(f"unknown reset {reset!r} (known: subtract, zero)")
    if surrogate not in SURROGATES:
        raise BenchError(f"unknown surrogate {surrogate!r} (known: {', '.join(SURROGATES)})")
    spikes, mem = _LIF.apply(inputs, float(leak), float(threshold), reset, surrogate, float(scale), float(init))
    return (spikes, mem) if return_mem else spikes
