"""Captum input-attribution methods on any model honouring ``model(x, sample_id=, seed=)``.

The sample ids travel as captum's ``additional_forward_args``: captum repeats them alongside the
inputs it expands (integrated-gradient steps, occlusion windows), so every expanded copy of a
sample is encoded with that sample's own Poisson uniforms -- the fixed encoding every other
method and metric sees. Captum differentiates with ``torch.autograd.grad``, so no ``.grad`` is
left on the model's parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import torch
from captum.attr import InputXGradient, IntegratedGradients, Occlusion, Saliency

from bench.errors import BenchError
from methods._common import reduce_channels
from methods.base import ExplainInput

ChannelReduce = Literal["sum", "mean", "max_abs"]


def forward_fn(inp: ExplainInput) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(x [N, C, H, W], sample_id [N]) -> logits [N, K]`` with the run seed bound."""
    def fwd(x: torch.Tensor, sample_id: torch.Tensor) -> torch.Tensor:
        return inp.model(x, sample_id=sample_id, seed=inp.seed)
    return fwd


def _common_args(inp: ExplainInput) -> dict:
    return dict(target=inp.target.to(inp.x.device), additional_forward_args=(inp.sample_id,))


def _leaf(inp: ExplainInput) -> torch.Tensor:
    """A fresh input leaf that requires grad (captum would flip the caller's tensor otherwise)."""
    return inp.x.detach().clone().requires_grad_(True)


@dataclasses.dataclass(frozen=True)
class SaliencyParams:
    """channel_reduce: "max_abs" is Simonyan et al. 2014 (max over channels of |dy/dx|);
    "sum" keeps the signed gradient summed over channels."""

    channel_reduce: ChannelReduce = "max_abs"


def saliency_map(inp: ExplainInput, params: SaliencyParams) -> torch.Tensor:
    """``[B, H, W]``: the input gradient of the target logit, reduced over channels."""
    attr = Saliency(forward_fn(inp)).attribute(_leaf(inp), abs=False, **_common_args(inp))
    return reduce_channels(attr.detach(), params.channel_reduce)


@dataclasses.dataclass(frozen=True)
class InputXGradientParams:
    """channel_reduce: "sum" (default) keeps the first-order Taylor contribution per pixel."""

    channel_reduce: ChannelReduce = "sum"


def input_x_gradient_map(inp: ExplainInput, params: InputXGradientParams) -> torch.Tensor:
    """``[B, H, W]``: ``x * dy/dx`` reduced over channels."""
    attr = InputXGradient(forward_fn(inp)).attribute(_leaf(inp), **_common_args(inp))
    return reduce_channels(attr.detach(), params.channel_reduce)


@dataclasses.dataclass(frozen=True)
class IntegratedGradientsParams:
    """n_steps: points of the path integral (captum's Gauss-Legendre rule). baseline: the
    constant baseline in normalized input space (0 = the dataset mean image).
    internal_batch_size: samples per forward/backward pass (at least the batch size; 0 = all
    path points at once, memory ``n_steps * B * T`` activations)."""

    n_steps: int = 32
    baseline: float = 0.0
    channel_reduce: ChannelReduce = "sum"
    internal_batch_size: int = 128

    def __post_init__(self) -> None:
        if self.n_steps < 1 or self.internal_batch_size < 0:
            raise ValueError("n_steps must be >= 1 and internal_batch_size >= 0")


def integrated_gradients_map(inp: ExplainInput, params: IntegratedGradientsParams) -> torch.Tensor:
    """``[B, H, W]``: Sundararajan et al. 2017, straight-line path from the baseline."""
    chunk = max(params.internal_batch_size, len(inp.x)) if params.internal_batch_size else None
    attr = IntegratedGradients(forward_fn(inp)).attribute(
        _leaf(inp), baselines=params.baseline, n_steps=params.n_steps, internal_batch_size=chunk,
        **_common_args(inp))
    return reduce_channels(attr.detach(), params.channel_reduce)


@dataclasses.dataclass(frozen=True)
class OcclusionParams:
    """window / stride: square patch size and step in input pixels (all channels occluded
    together). baseline: fill value in normalized space (0 = dataset mean).
    perturbations_per_eval: occluded copies per forward pass."""

    window: int = 8
    stride: int = 4
    baseline: float = 0.0
    perturbations_per_eval: int = 4

    def __post_init__(self) -> None:
        if self.window < 1 or self.stride < 1 or self.perturbations_per_eval < 1:
            raise ValueError("window, stride and perturbations_per_eval must be >= 1")


def occlusion_map(inp: ExplainInput, params: OcclusionParams) -> torch.Tensor:
    """``[B, H, W]``: Zeiler & Fergus 2014, drop of the target logit when a patch is occluded
    (captum averages over the windows covering a pixel). Forward passes only."""
    C, H, W = inp.x.shape[1:]
    if params.window > min(H, W):
        raise BenchError(f"occlusion window {params.window} is larger than the {H}x{W} input")
    with torch.no_grad():
        attr = Occlusion(forward_fn(inp)).attribute(
            inp.x, sliding_window_shapes=(C, params.window, params.window),
            strides=(C, params.stride, params.stride), baselines=params.baseline,
            perturbations_per_eval=params.perturbations_per_eval, **_common_args(inp))
    # The window spans all channels, so every channel carries the same value.
    return attr.mean(1)
