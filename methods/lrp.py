"""Spiking layer-wise relevance propagation: SLTRP, SLRP and RelCAM from Sun et al., "EventRPG",
ICLR 2024 (arXiv:2403.09274); code github.com/myuansun/EventRPG (``snn_utils/layers.py`` rules,
``snn_utils/sew_resnet.py`` ``relprop``/``CLRP``, ``utils/RelCAM.py``).

* Output relevance, contrastive (CLRP): ``R_k = -1/K + [k = target]`` (sums to 0), at every
  step (SLTRP) or once on time-averaged activations (SLRP).
* Linear / conv layers, alpha-beta rule (beta = alpha - 1; alpha = 1 is z+)::

      R_i = sum_j [alpha (x_i+ w_ij+ + x_i- w_ij-) / z_j^act - beta (x_i+ w_ij- + x_i- w_ij+) / z_j^inh] R_j

  per step (SLTRP) or on ``mean_t x+`` / ``mean_t x-`` (SLRP). Batch norm passes relevance
  through unchanged (the reference's ``BatchNorm2d.relprop`` up to its 1e-9 stabilizer).
* Spiking neurons: SLRP passes relevance through; SLTRP carries it back through the membrane:
  with ``v_t`` the membrane after step t and ``x_{t+1}`` the next input, step t keeps the share
  ``w_t = lambda v_t+ / (x_{t+1}+ + lambda v_t+)`` of step t+1's carried relevance::

      R~_{T-1} = R_{T-1};  for t = T-2..0:  R~_t = R_t + w_t R~_{t+1},  R~_{t+1} <- (1 - w_t) R~_{t+1}

  lambda is the neuron's leak (IF: 1; the suite's LIF ``u_t = leak v_{t-1} + I_t``). The
  reference's IF/LIF branches index ``weight[:, i]`` where its PLIF branch indexes
  ``weight[i]``; this follows the PLIF indexing. As in the reference, the inhibitory (negative)
  pass uses the negative membrane against zero input (the reference clamps X before).
* Every other operation (pooling, global average pooling, reshapes) gets the z-rule: the pass
  runs as a backward pass in which a tensor's relevance is its value times the gradient, so a
  linear operation without bias conserves relevance. The reference's redistribution special
  case for 2- or 64-channel convolutions is left out.
* RelCAM at layer l: ``r_{t,k} = sum_hw R_{t,k,h,w}``, ``CAM_t = sum_k F_{t,k} r_{t,k}``.

Runs on models whose layers run once per forward (the VGG cards; adapted multi-step models);
SLTRP's membrane carry needs the suite's spiking layers (which recompute their membrane).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from bench.errors import BenchError
from bench.registry import METHODS
from methods._chain import (
    InputTap,
    attach,
    input_map,
    linear_part,
    neuron_leak,
    neuron_modules,
    spikes_of,
    weight_modules,
    with_spikes,
)
from methods._common import require_spatial, run_model
from methods.base import ExplainInput
from methods.postprocess import TimeReduce

Mode = Literal["sltrp", "slrp"]
REFERENCE = ("Sun et al., EventRPG, ICLR 2024 (arXiv:2403.09274); github.com/myuansun/EventRPG "
             "snn_utils/layers.py, snn_utils/sew_resnet.py")


def safe_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a / b`` where ``b != 0``, else 0 (the reference's ``safe_divide``)."""
    return a / (b + b.eq(0).to(b.dtype) * 1e-9) * b.ne(0).to(b.dtype)


def contrastive_relevance(target: torch.Tensor, K: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """CLRP output relevance ``[B, K]``: ``-1/K`` everywhere plus 1 at the target (rows sum to 0)."""
    R = torch.full((target.shape[0], K), -1.0 / K, dtype=dtype, device=target.device)
    return R.scatter_add_(1, target.view(-1, 1), torch.ones_like(R[:, :1]))


def alpha_beta(xp: torch.Tensor, xn: torch.Tensor, w: torch.Tensor, R: torch.Tensor,
               fwd: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], alpha: float = 1.0) -> torch.Tensor:
    """Input relevance (shape of ``xp``) of the alpha-beta rule for output relevance ``R``.

    ``xp >= 0`` and ``xn <= 0`` are the input's parts, ``fwd(x, w)`` the layer's bias-free map.
    """
    beta = alpha - 1.0
    wp, wn = w.clamp(min=0), w.clamp(max=0)

    def share(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x1, x2 = xp.detach().requires_grad_(), xn.detach().requires_grad_()
            z1, z2 = fwd(x1, w1), fwd(x2, w2)
            s = safe_divide(R, (z1 + z2).detach())
            c1, c2 = torch.autograd.grad((z1, z2), (x1, x2), (s, s))
        return x1.detach() * c1 + x2.detach() * c2

    out = alpha * share(wp, wn)
    return out - beta * share(wn, wp) if beta != 0 else out


def membrane_carry(R: torch.Tensor, v: torch.Tensor, x: torch.Tensor, lam: float) -> torch.Tensor:
    """SLTRP's neuron rule for one sign: relevance of the outputs ``R [T, ...]`` -> of the inputs.

    ``v [T, ...]``: membrane after each step (same sign part as ``x``), ``x [T, ...]``: inputs.
    """
    w = safe_divide(lam * v[:-1], x[1:] + lam * v[:-1])
    Rn = torch.zeros_like(R)
    Rn[-1] = R[-1]
    for i in reversed(range(w.shape[0])):
        carried = Rn[i + 1].clone()
        Rn[i] = carried * w[i] + R[i]
        Rn[i + 1] = carried * (1 - w[i])
    return Rn


def neuron_rule(R: torch.Tensor, v: torch.Tensor, x: torch.Tensor, lam: float, alpha: float) -> torch.Tensor:
    """Alpha-beta combination of :func:`membrane_carry` over positive and negative parts."""
    beta = alpha - 1.0
    out = alpha * membrane_carry(R, v.clamp(min=0), x.clamp(min=0), lam)
    if beta != 0:
        out = out - beta * membrane_carry(R, v.clamp(max=0), torch.zeros_like(x), lam)
    return out


def _post_reset_membrane(module: nn.Module, z: torch.Tensor, T: int) -> torch.Tensor:
    """``v_t`` after each step ``[T, B, ...]`` of one of the suite's spiking layers."""
    if not hasattr(module, "dynamics"):
        raise BenchError(f"SLTRP needs the membrane of {type(module).__name__}; use slrp for this model")
    n = module.neuron
    s, u = module.dynamics(z.detach(), return_mem=True)
    if n.order == "fire_integrate":  # u_{t+1} = v_t; v_{T-1} never enters a share
        return torch.cat([u[1:], u[-1:]])
    return u - n.threshold * s if n.reset == "subtract" else u * (1 - s)


class _Relay(torch.autograd.Function):
    """Forward: the module's output value. Backward: ``rule(gradient at the output)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, out: torch.Tensor, rule: Callable) -> torch.Tensor:  # type: ignore[override]
        ctx.rule = rule
        return out.clone()

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        return ctx.rule(g), None, None


@dataclasses.dataclass
class _Pass:
    """One relevance pass: mode, alpha, sizes, the classifier's seed and what it captured."""

    mode: str
    alpha: float
    T: int
    B: int
    seed: torch.Tensor | None = None
    last_weight: list = dataclasses.field(default_factory=list)

    def layout(self, t: torch.Tensor) -> str:
        if self.T > 1 and t.shape[0] == self.T * self.B:
            return "folded"
        if self.T > 1 and t.dim() >= 2 and t.shape[:2] == (self.T, self.B):
            return "multi"
        return "invariant"

    def steps(self, t: torch.Tensor) -> torch.Tensor:
        """``[T', B, ...]`` view (T' = 1 for an invariant tensor)."""
        lay = self.layout(t)
        return t.reshape(self.T, self.B, *t.shape[1:]) if lay == "folded" else t if lay == "multi" else t[None]

    def relevance(self, value: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """SLTRP: per element ``value * g``; SLRP: summed over time ``[B, ...]``."""
        r = value * g
        return r if self.mode == "sltrp" else self.steps(r).sum(0)

    def to_grad(self, R: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The gradient at ``x`` that carries relevance ``R`` (value * gradient = R)."""
        if self.mode == "sltrp":
            return safe_divide(R, x)
        xs = self.steps(x)
        g = safe_divide(R, xs.sum(0))  # sum_t x_t * g = R with g the same at every step
        return g.expand_as(xs).reshape(x.shape)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "sltrp":
            return x.clamp(min=0), x.clamp(max=0)
        xs = self.steps(x)
        return xs.clamp(min=0).mean(0), xs.clamp(max=0).mean(0)


def _weight_rule(p: _Pass, module: nn.Module, x: torch.Tensor, out: torch.Tensor, slot: dict) -> Callable:
    def rule(g: torch.Tensor) -> torch.Tensor:
        if slot.get("seed"):  # the classifier: CLRP replaces whatever reached it
            per_step = p.mode == "sltrp" and p.layout(out) != "invariant"
            R = p.seed.expand(p.T, *p.seed.shape).reshape(out.shape) if per_step else p.seed
        else:
            R = p.relevance(out, g)
        xp, xn = p.parts(x)
        w = module.weight.detach()
        R_in = alpha_beta(xp, xn, w, R, lambda a, v: linear_part(module, a, v, R.shape), p.alpha)
        return p.to_grad(R_in, x)
    return rule


def relevance_pass(inp: ExplainInput, mode: str, alpha: float, layer: str | None = None):
    """Run one SLTRP/SLRP pass. Returns ``(input relevance [T, B, *features], layer relevance,
    layer spikes)``; input relevance summed over time for SLRP (``T`` axis of 1). ``layer``:
    also return the relevance ``[T, B, ...]`` (SLRP: ``[1, B, ...]``) and spikes of that
    spiking layer's output (RelCAM), stopping the pass there."""
    model, T, B = inp.model, int(inp.model.T), inp.x.shape[0]
    p = _Pass(mode, alpha, T, B)
    tap = InputTap(T, B)
    neurons = neuron_modules(model)
    if any(m == "step" for _, m in neurons.values()):
        raise BenchError("spiking LRP needs spiking layers that run once per forward (multi-step or time-folded)")
    captured: dict[str, torch.Tensor] = {}

    def weight_hook(module, args, out):
        slot: dict = {}
        p.last_weight.append(slot)
        return _Relay.apply(args[0], out.detach(), _weight_rule(p, module, args[0].detach(), out.detach(), slot))

    def norm_hook(module, args, out):
        x, o = args[0].detach(), out.detach()
        return _Relay.apply(args[0], o, lambda g: p.to_grad(p.relevance(o, g), x))

    def neuron_hook(name, module):
        lam = neuron_leak(module)

        def rule_for(z, s):
            if mode == "slrp":
                return lambda g: p.to_grad(p.relevance(s, g), z)
            v = _post_reset_membrane(module, z, T).reshape(p.steps(z).shape)

            def rule(g):
                R = neuron_rule(p.steps(s * g), v, p.steps(z), lam, alpha)
                return safe_divide(R.reshape(z.shape), z)
            return rule

        def hook(mod, args, out):
            z, s = args[0], spikes_of(out).detach()
            tap.see_neuron_input(z, "folded" if p.layout(z) == "folded" else "multi")
            y = _Relay.apply(z, s, rule_for(z.detach(), s))
            if name == layer:
                captured["out"], captured["spikes"] = y, s
            return with_spikes(out, y)
        return hook

    norms = [m for m in model.modules() if "BatchNorm" in type(m).__name__]
    outer = [m for m in norms if not any(m is not o and m in list(o.modules()) for o in norms)]
    with contextlib.ExitStack() as stack, torch.enable_grad():
        for m in weight_modules(model):
            attach(stack, m.register_forward_pre_hook(tap.pre_hook))
            attach(stack, m.register_forward_hook(weight_hook))
        for m in outer:
            attach(stack, m.register_forward_hook(norm_hook))
        for name, (m, _) in neurons.items():
            attach(stack, m.register_forward_hook(neuron_hook(name, m)))
        logits = run_model(inp)
        p.seed = contrastive_relevance(inp.target.to(logits.device), logits.shape[1], logits.dtype)
        p.last_weight[-1]["seed"] = True
        ones = torch.ones_like(logits)
        if layer is not None:
            (g,) = torch.autograd.grad(logits, captured["out"], ones)
            s = captured["spikes"]
            R_layer = p.steps(p.relevance(s, g)) if mode == "sltrp" else p.relevance(s, g)[None]
            return None, R_layer, p.steps(s)
        g = tap.grads(logits, ones)
    R_in = tap.values() * g
    return (R_in if mode == "sltrp" else R_in.sum(0, keepdim=True)), None, None


@dataclasses.dataclass(frozen=True)
class SltrpParams:
    """alpha: the alpha-beta rule's alpha (beta = alpha - 1; 1 is z+). time_reduce: single map."""

    alpha: float = 1.0
    time_reduce: TimeReduce = "sum"

    def __post_init__(self) -> None:
        if self.alpha < 1:
            raise ValueError(f"alpha must be >= 1 (beta = alpha - 1 >= 0), got {self.alpha}")


@dataclasses.dataclass(frozen=True)
class SlrpParams:
    """alpha: the alpha-beta rule's alpha (beta = alpha - 1; 1 is z+)."""

    alpha: float = 1.0

    def __post_init__(self) -> None:
        SltrpParams(alpha=self.alpha)


@dataclasses.dataclass(frozen=True)
class RelCamParams:
    """mode: "sltrp" (per-step relevance) or "slrp"; alpha as SLTRP; layer: None = the card's
    default; time_reduce: single-map view."""

    mode: Mode = "sltrp"
    alpha: float = 1.0
    layer: str | None = None
    time_reduce: TimeReduce = "mean"

    def __post_init__(self) -> None:
        if self.mode not in ("sltrp", "slrp"):
            raise ValueError(f"unknown mode {self.mode!r} (sltrp, slrp)")
        SltrpParams(alpha=self.alpha)


def lrp_cannot_run(card: object, mode: str) -> str:
    """Why spiking LRP in ``mode`` ("sltrp" or "slrp") cannot run on the model of ``card`` ("" =
    it can). Both need spiking layers that run once per forward: an adapted model that calls its
    layers step by step cannot be explained. SLTRP's membrane carry also recomputes each step's
    post-reset membrane, which only the suite's own spiking layers can do: an adapted snnTorch /
    SpikingJelly / plain model is explained by ``slrp`` (RelCAM: ``mode = "slrp"``)."""
    from bench.adapters.spec import ADAPTERS

    arch = getattr(card, "arch", "")
    if arch not in ADAPTERS:
        return ""
    if any(getattr(layer, "mode", "") == "step" for layer in getattr(card, "layers", ())):
        return f"spiking LRP needs spiking layers that run once per forward; this {arch} model runs them step by step"
    if mode == "sltrp":
        return f"the membrane carry needs the suite's own spiking layers, not an adapted {arch} model (use slrp)"
    return ""


#: what every method of this module registers with (each adds its summary, time axis, reference)
_REG = dict(model_kind="snn", needs_grad=True, needs_label=True, version="1")


@METHODS.register(
    summary="SLTRP: spiking LRP per time step, relevance carried back through the membrane (z+)",
    temporal=True, **_REG, reference=REFERENCE, params=SltrpParams,
    cannot_run=lambda card, params: lrp_cannot_run(card, "sltrp"))
def sltrp(inp: ExplainInput, params: SltrpParams) -> torch.Tensor:
    """Raw input relevance ``[T, B, H, W]`` (channels summed) for ``inp.target``."""
    R, _, _ = relevance_pass(inp, "sltrp", params.alpha)
    return input_map(R.detach(), inp.x)


@METHODS.register(
    summary="SLRP: spiking LRP on time-averaged activations, relevance through neurons unchanged (z+)",
    temporal=False, **_REG, reference=REFERENCE, params=SlrpParams,
    cannot_run=lambda card, params: lrp_cannot_run(card, "slrp"))
def slrp(inp: ExplainInput, params: SlrpParams) -> torch.Tensor:
    """Raw input relevance ``[B, H, W]`` (channels summed) for ``inp.target``."""
    R, _, _ = relevance_pass(inp, "slrp", params.alpha)
    return input_map(R.detach(), inp.x)[0]


@METHODS.register(
    summary="RelCAM: a layer's spikes weighted by their channel's spiking-LRP relevance, per step",
    temporal=True, **_REG, reference=REFERENCE.replace("snn_utils/sew_resnet.py", "snn_utils/sew_resnet.py, utils/RelCAM.py"),
    params=RelCamParams,
    cannot_run=lambda card, params: lrp_cannot_run(card, params.mode))
def relcam(inp: ExplainInput, params: RelCamParams) -> torch.Tensor:
    """Raw maps ``[T, B, h, w]`` at ``inp.layer``: ``sum_k F[t, k] * sum_hw R[t, k]``."""
    _, R, F = relevance_pass(inp, params.mode, params.alpha, layer=inp.layer)
    F = require_spatial(F.detach(), inp.layer)
    r = R.detach().sum((-2, -1), keepdim=True)  # [T or 1, B, C, 1, 1]
    return (F * r).sum(2)


def relevance_conservation(inp: ExplainInput, mode: str = "sltrp", alpha: float = 1.0) -> torch.Tensor:
    """Per-sample conservation residual ``[B]`` of one SLTRP/SLRP pass (:mod:`methods._conservation`):
    the input relevance against the CLRP output relevance (at each of the T steps for SLTRP)."""
    from methods._conservation import conservation_residual

    R_in, _, _ = relevance_pass(inp, mode, alpha)
    seed = contrastive_relevance(inp.target, int(inp.model.card.num_classes))
    steps = int(inp.model.T) if mode == "sltrp" else 1
    return conservation_residual(R_in.transpose(0, 1), seed.unsqueeze(1).expand(-1, steps, -1))
