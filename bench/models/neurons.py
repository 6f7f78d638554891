"""Spiking neurons as pure functions: surrogate spike functions and the multi-step LIF.

Two update orders, both with state created inside every call (``v_{-1} = init * threshold``,
0 by default). ``order="integrate_fire"`` (the default: the lab's BNTT training code, Kim &
Panda 2021 "BNTT"; snnTorch ``Leaky(reset_delay=False)`` for inputs below threshold) integrates,
then fires in the same step::

    u_t = leak * v_{t-1} + I_t
    s_t = 1[u_t > threshold]            (strict, as both reference codes and snnTorch)
    v_t = u_t - s_t * threshold         reset "subtract"
    v_t = u_t * (1 - s_t)               reset "zero"

``order="fire_integrate"`` (the SAM reference code, Kim & Panda 2021 "Visual explanations ...
using inter-spike intervals", ``model.py``) fires from the *previous* step's membrane, then
integrates, the reset subtracted after the leak (not leaked)::

    u_t = v_{t-1}                       (the membrane compared with the threshold)
    s_t = 1[u_t > threshold]
    v_t = leak * v_{t-1} + I_t - s_t * threshold          reset "subtract"
    v_t = leak * v_{t-1} * (1 - s_t) + I_t                reset "zero" (not in the reference code)

so I_t can first cause a spike at step t+1: a layer lags its input by one step (layer L of a
stack by L steps), and ``s_0`` depends on ``init`` only.

leak 1.0 is the IF neuron. The reset signal ``s_t`` is detached in the reset path, as in both
reference codes and in snnTorch (the surrogate gradient flows through the spike output only).
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


ORDERS = ("integrate_fire", "fire_integrate")


class _LIF(torch.autograd.Function):
    """Fused multi-step LIF: forward without an autograd graph, hand-written BPTT backward.

    Backward of the dynamics in the module docstring (reset detached), on the compared
    membranes ``u_t`` saved by the forward, with ``r_t = 1`` (subtract) or ``1 - s_t`` (zero)::

        D_t = dL/ds_t * f(u_t/theta - 1)/theta + leak * r_t * D_{t+1}      (D_T = 0)

    integrate_fire: ``dL/dI_t = D_t`` (``u_t`` holds ``I_t``). fire_integrate: ``I_t`` first
    enters ``u_{t+1} = v_t``, and ``dv_{t+1}/dv_t = leak * r_{t+1}``, so ``dL/dI_t = D_{t+1}``
    (``dL/dI_{T-1} = 0``: the last input reaches no spike). This equals autograd through the
    step-by-step forms with :func:`spike` (pinned by tests) at a fraction of their cost.
    """

    @staticmethod
    def forward(ctx, inputs, leak, threshold, reset, surrogate, scale, init, order):
        # Written into preallocated buffers: [T, N, ...] temporaries would dominate the cost.
        mem = torch.empty_like(inputs)
        spikes = torch.empty_like(inputs)
        v = torch.full_like(inputs[0], init * threshold)
        if order == "integrate_fire":
            for t in range(inputs.shape[0]):
                u, s = mem[t], spikes[t]
                torch.add(inputs[t], v, alpha=leak, out=u)
                torch.gt(u, threshold, out=s)
                if reset == "subtract":
                    torch.sub(u, s, alpha=threshold, out=v)
                else:
                    torch.mul(u, 1.0 - s, out=v)
        else:
            for t in range(inputs.shape[0]):
                u, s = mem[t], spikes[t]
                u.copy_(v)
                torch.gt(u, threshold, out=s)
                if reset == "subtract":  # (leak * v + I) - threshold * s: the reference's rounding order
                    torch.add(inputs[t], u, alpha=leak, out=v)
                    v.sub_(s, alpha=threshold)
                else:
                    torch.mul(u, 1.0 - s, out=v)
                    torch.add(inputs[t], v, alpha=leak, out=v)
        ctx.save_for_backward(mem, spikes)
        ctx.params = (leak, threshold, reset, surrogate, scale, order)
        ctx.mark_non_differentiable(mem)
        return spikes, mem

    @staticmethod
    def backward(ctx, grad_spikes, _grad_mem):
        mem, spikes = ctx.saved_tensors
        leak, threshold, reset, surrogate, scale, order = ctx.params
        grad = SURROGATES[surrogate].shape_(mem.div(threshold).sub_(1.0), scale).mul_(grad_spikes)
        if threshold != 1.0:
            grad.div_(threshold)
        # Accumulate backwards in place: grad[t] += leak * r_t * grad[t+1] (r_t = 1 - s_t for a zero reset).
        last = 0 if order == "integrate_fire" else 1  # fire_integrate never reads D_0 (it belongs to init)
        for t in range(grad.shape[0] - 2, last - 1, -1):
            if reset == "subtract":
                grad[t].add_(grad[t + 1], alpha=leak)
            else:
                grad[t].addcmul_(grad[t + 1], 1.0 - spikes[t], value=leak)
        if order == "fire_integrate":  # dL/dI_t = D_{t+1}: shift one step earlier, in place
            grad[:-1].copy_(grad[1:].clone())
            grad[-1].zero_()
        return grad, None, None, None, None, None, None, None


def lif_multistep(inputs: torch.Tensor, leak: float, threshold: float, reset: str = "subtract",
                  surrogate: str = "pwl", scale: float = 0.3, return_mem: bool = False, init: float = 0.0,
                  order: str = "integrate_fire"):
    """Run a LIF population over time.

    inputs: ``[T, N, ...]`` input currents; ``init``: the membrane before the first step, as a
    fraction of the threshold (a constant: no gradient flows into it); ``order``: "integrate_fire"
    or "fire_integrate" (module docstring). Returns spikes ``[T, N, ...]`` (0/1, inputs' dtype),
    or ``(spikes, mem)`` with ``mem`` ``[T, N, ...]`` the membrane ``u_t`` compared with the
    threshold at step t (pre-reset; for fire_integrate the previous step's membrane), returned
    without gradient, when ``return_mem``.
    """
    if reset not in ("subtract", "zero"):
        raise BenchError(f"unknown reset {reset!r} (known: subtract, zero)")
    if surrogate not in SURROGATES:
        raise BenchError(f"unknown surrogate {surrogate!r} (known: {', '.join(SURROGATES)})")
    if order not in ORDERS:
        raise BenchError(f"unknown neuron order {order!r} (known: {', '.join(ORDERS)})")
    spikes, mem = _LIF.apply(inputs, float(leak), float(threshold), reset, surrogate, float(scale), float(init),
                             order)
    return (spikes, mem) if return_mem else spikes
