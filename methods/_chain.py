"""Model-agnostic pieces of the modified backward passes of TSA and spiking LRP (private).

Both methods rewrite how a backward pass crosses two kinds of module, whatever the model's
class: *weight* modules (``nn.Linear`` and every ``nn.ConvNd``) and *spiking neurons* (the
model's recordable spiking layers: the VGG cards' ``acts``, an adapted model's layers). Every
other operation (pooling, reshapes, batch norm unless a method hooks it) keeps its ordinary
backward.

Time layouts of a neuron call (``mode``): "folded" ``[T*B, ...]``, "multi" ``[T, B, ...]``,
"step" ``[B, ...]`` once per step (T calls per forward).

The *input layer* is the input of the first weight module the forward calls: the encoded
spikes (Poisson, events, frames: one input per step) or, for direct coding, the analog image
that the first convolution sees once and the model then repeats over time ("invariant").
:class:`InputTap` swaps it for a leaf so that a backward pass can stop there.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError

WEIGHT_TYPES = (nn.Linear, nn.modules.conv._ConvNd)


def weight_modules(model: nn.Module) -> list[nn.Module]:
    """Every linear / convolution module of ``model`` (the weights W^l of the chains)."""
    return [m for m in model.modules() if isinstance(m, WEIGHT_TYPES)]


def neuron_modules(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """``{layer name: (spiking module, time layout)}`` for every spiking layer of ``model``.

    A VGG card runs each spiking layer once per forward on the time-folded batch; an adapted
    model (:mod:`bench.adapters`) knows each recordable layer's mode from its probe forward.
    """
    layers = getattr(model, "_layers", None)
    if isinstance(layers, dict) and hasattr(model, "modes"):
        return {n: (m, model.modes.get(n, "step")) for n, m in layers.items()}
    acts = getattr(model, "acts", None)
    if acts is None:
        raise BenchError(f"{type(model).__name__}: no spiking layers found (neither a card model nor adapted)")
    return {n: (m, "folded") for n, m in acts.items() if getattr(m, "spiking", False)}


def neuron_leak(m: nn.Module) -> float:
    """The membrane decay per step of spiking module ``m`` (1.0 for an IF neuron).

    The suite's LIF: ``neuron.leak``; snnTorch: ``beta``; SpikingJelly ``ParametricLIFNode``:
    ``1 - sigmoid(w)`` and ``LIFNode``: ``1 - 1/tau`` (its update ``v += (x - v) / tau``).
    """
    params = getattr(m, "neuron", None)
    if params is not None and hasattr(params, "leak"):
        return float(params.leak)
    beta = getattr(m, "beta", None)
    if beta is not None:
        return float(torch.as_tensor(beta).detach().reshape(-1)[0])
    if "Parametric" in type(m).__name__ and isinstance(getattr(m, "w", None), torch.Tensor):
        return 1.0 - float(torch.sigmoid(m.w.detach()))
    tau = getattr(m, "tau", None)
    if tau is not None:
        return 1.0 - 1.0 / float(tau)
    return 1.0


def readout_gain(model: nn.Module) -> float:
    """d(logits) / d(output at one step) undone: ``T`` for a time-mean readout, else 1.

    The VGG cards average the classifier over time; an adapted model says so in its spec.
    """
    spec = getattr(model, "spec", None)
    T = int(getattr(model, "T", 1))
    if spec is None:
        return float(T)
    return float(T) if getattr(spec, "readout", "mean") == "mean" and getattr(spec, "call", "") != "image" else 1.0


def to_steps(t: torch.Tensor, mode: str, T: int) -> torch.Tensor:
    """A neuron tensor in layout ``mode`` -> ``[T', B, ...]`` (``T' = 1`` for one "step" call)."""
    if mode == "folded":
        return t.reshape(T, -1, *t.shape[1:])
    if mode == "multi":
        return t
    return t.unsqueeze(0)


def spikes_of(out: object) -> torch.Tensor:
    """A neuron's spike tensor: the output, or the first element of a ``(spikes, mem)`` tuple."""
    return out if isinstance(out, torch.Tensor) else out[0]  # type: ignore[index]


def with_spikes(out: object, s: torch.Tensor) -> object:
    """``out`` with its spike tensor replaced by ``s``."""
    return s if isinstance(out, torch.Tensor) else (s, *out[1:])  # type: ignore[index]


@dataclasses.dataclass
class InputTap:
    """The input leaves (one per call of the first weight module) and the first neuron input
    (``split``, with its layout), filled during one forward."""

    T: int
    B: int
    module: nn.Module | None = None
    leaves: list[torch.Tensor] = dataclasses.field(default_factory=list)
    split: torch.Tensor | None = None
    split_mode: str = "folded"

    def pre_hook(self, module: nn.Module, args: tuple) -> tuple | None:
        if self.module is None:
            self.module = module
        if module is not self.module:
            return None
        leaf = args[0].detach().requires_grad_()
        self.leaves.append(leaf)
        return (leaf, *args[1:])

    def see_neuron_input(self, z: torch.Tensor, mode: str) -> None:
        if self.split is None:
            self.split, self.split_mode = z, mode

    def layout(self) -> str:
        """How the input leaves hold time: "step" (T leaves), "folded", "multi" or "invariant"."""
        if not self.leaves:
            raise BenchError("the model's forward called no linear or convolution module")
        first, T, B = self.leaves[0], self.T, self.B
        if len(self.leaves) == T and T > 1:
            return "step"
        if len(self.leaves) != 1:
            raise BenchError(f"the first weight module ran {len(self.leaves)} times in a forward of T={T}")
        if T == 1 or (first.shape[0] == T * B and T > 1):
            return "folded"
        if first.dim() >= 2 and first.shape[:2] == (T, B):
            return "multi"
        if first.shape[0] == B:
            return "invariant"
        raise BenchError(f"cannot tell how the model's input {list(first.shape)} holds T={T}, B={B}")

    def values(self) -> torch.Tensor:
        """The input layer's values per step, ``[T, B, *features]``."""
        lay = self.layout()
        if lay == "step":
            return torch.stack([leaf.detach() for leaf in self.leaves])
        first = self.leaves[0].detach()
        if lay == "folded":
            return first.reshape(self.T, self.B, *first.shape[1:])
        if lay == "multi":
            return first
        return first.unsqueeze(0).expand(self.T, *first.shape)

    def grads(self, out: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
        """Per-step gradient of ``(seed * out).sum()`` at the input layer, ``[T, B, *features]``.

        A modified backward with no coupling across time (TSA) or one that handles time
        itself (SLTRP's membrane carry) gives every step's share at a per-step input directly.
        An invariant input sums its T uses: the pass stops at the first neuron's input and
        goes on to the input once per step, with only that step's gradient.
        """
        lay = self.layout()
        if lay != "invariant":
            g = torch.autograd.grad(out, self.leaves, seed)
            if lay == "step":
                return torch.stack(g)
            return g[0].reshape(self.T, self.B, *g[0].shape[1:]) if lay == "folded" else g[0]
        if self.split is None or self.split_mode == "step":
            raise BenchError("a time-invariant input needs a first spiking layer that runs once per forward")
        (g1,) = torch.autograd.grad(out, self.split, seed, retain_graph=True)
        steps = to_steps(g1, self.split_mode, self.T)
        per_step = []
        for t in range(self.T):
            mask = torch.zeros_like(steps)
            mask[t] = steps[t]
            (gt,) = torch.autograd.grad(self.split, self.leaves[0], mask.reshape(g1.shape), retain_graph=True)
            per_step.append(gt)
        return torch.stack(per_step)


def attach(stack: contextlib.ExitStack, handle: torch.utils.hooks.RemovableHandle) -> None:
    """Tie a hook's removal to ``stack`` (removed on exit, exceptions included)."""
    stack.callback(handle.remove)


def linear_part(module: nn.Module, x: torch.Tensor, w: torch.Tensor, like: torch.Size | None = None) -> torch.Tensor:
    """Weight module ``module``'s bias-free map of ``x`` with weights ``w`` (shaped ``like``).

    A multi-step convolution (SpikingJelly, ``[T, B, C, ...]``) is run on the folded batch.
    """
    if isinstance(module, nn.Linear):
        return F.linear(x, w)
    extra = x.dim() - w.dim()  # 1 for a leading time axis on top of the batch
    xf = x.flatten(0, extra) if extra > 0 else x
    z = module._conv_forward(xf, w, None)
    return z.reshape(like) if like is not None else z


def input_map(attr: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-step input attributions ``[T, B, *features]`` -> ``[T, B, H, W]``, channels summed.

    ``features`` is ``[C, H, W]``, or ``[F]`` for a network that flattens its input first
    (``F = C' * H * W`` with ``H, W`` those of ``x``).
    """
    T, B = attr.shape[:2]
    if attr.dim() == 5:
        return attr.sum(2)
    H, W = x.shape[-2:]
    if attr.dim() == 3 and attr.shape[2] % (H * W) == 0:
        return attr.reshape(T, B, -1, H, W).sum(2)
    raise BenchError(f"input attributions of shape {list(attr.shape)} do not map onto a {H}x{W} image")
