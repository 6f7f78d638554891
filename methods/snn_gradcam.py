"""SNN-crafted Grad-CAM: Kim & Panda 2021, Eq. 1-2 (the paper's gradient baseline on the SNN).

Channel weights from gradients of the class output w.r.t. the target layer's spikes ``A``,
backpropagated through time and the surrogate:

    alpha[k]    = (1/N) sum_t sum_i sum_j d y_c / d A[t, k, i, j]      (shared over time, Eq. 1)
    alpha[t, k] = (1/N)       sum_i sum_j d y_c / d A[t, k, i, j]      (per step, Eq. 2's index)
    G[t, i, j]  = max(0, sum_k alpha[(t,) k] * A[t, k, i, j])

N = H * W. ``y_c`` is the logit of ``inp.target`` (the paper explains the ground-truth class;
the runner decides whether it passes the label or the prediction). The ReLU is part of
Grad-CAM's definition (``relu=False`` exposes the signed map).

Where the ReLU sits relative to the time aggregation gives two different maps (on the shipped
vgg5_snn_t8 at conv3 their normalized maps differ by up to 0.8), so both are named:

* ``aggregate="relu_then_mean"`` (the default, and what the committed results and the
  leaderboard use, unchanged since version 1): ``G[t]`` above, ReLU per step; the single map is
  ``time_reduce`` (mean) of the rectified steps.
* ``aggregate="mean_then_relu"``: Eq. 1-2 as printed, ``max(0, sum_k alpha[k] (1/T) sum_t
  A[t, k])``. The per-step maps are the signed ``sum_k alpha[k] A[t, k]`` kept where the time
  mean is positive, so their time mean (and sum, up to T) is exactly that map.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from bench.registry import METHODS
from methods._common import layer_activations_and_grads
from methods.base import ExplainInput
from methods.postprocess import TimeReduce


@dataclasses.dataclass(frozen=True)
class SnnGradCamParams:
    """per_step_alpha: Eq. 2's per-time-step channel weights instead of one alpha (Eq. 1).
    relu: Grad-CAM's ReLU. aggregate: whether the ReLU comes before ("relu_then_mean") or
    after ("mean_then_relu") the time mean (module doc). layer: None = the card's default."""

    per_step_alpha: bool = False
    relu: bool = True
    layer: str | None = None
    time_reduce: TimeReduce = "mean"
    # Omitted from plain data at its default (bench.config.to_plain): committed run ids stay.
    aggregate: Literal["relu_then_mean", "mean_then_relu"] = dataclasses.field(
        default="relu_then_mean", metadata={"omit_default": True})

    def __post_init__(self) -> None:
        if self.aggregate not in ("relu_then_mean", "mean_then_relu"):
            raise ValueError(f"unknown aggregate {self.aggregate!r} (relu_then_mean, mean_then_relu)")


def gradcam_maps(acts: torch.Tensor, grads: torch.Tensor, per_step_alpha: bool = False,
                 relu: bool = True, aggregate: str = "relu_then_mean") -> torch.Tensor:
    """Activations and their gradients ``[T, B, C, H, W]`` -> Grad-CAM maps ``[T, B, H, W]``.

    With T = 1 (an ANN) this is standard Grad-CAM (Selvaraju et al. 2017).
    """
    n = acts.shape[-1] * acts.shape[-2]
    alpha = grads.sum(dim=(-2, -1)) / n  # [T, B, C]
    if not per_step_alpha:
        alpha = alpha.sum(0, keepdim=True)  # Eq. 1 sums over t as well
    cam = (alpha[..., None, None] * acts).sum(2)
    if not relu:
        return cam
    if aggregate == "relu_then_mean":
        return cam.clamp_min(0)
    if aggregate == "mean_then_relu":
        return cam * (cam.mean(0, keepdim=True) > 0)  # mean over t of this = ReLU(mean over t of cam)
    raise ValueError(f"unknown aggregate {aggregate!r}")


@METHODS.register(
    summary="SNN-crafted Grad-CAM: BPTT gradients of the class score on a layer's spikes, per step",
    model_kind="snn", temporal=True, needs_grad=True, needs_label=True, version="1",
    reference="Kim & Panda, Sci. Rep. 2021, Eq. 1-2", params=SnnGradCamParams, attack_gallery=True)
def snn_gradcam(inp: ExplainInput, params: SnnGradCamParams) -> torch.Tensor:
    """Raw maps ``[T, B, h, w]`` at ``inp.layer`` for the sample's fixed encoding."""
    acts, grads = layer_activations_and_grads(inp)
    return gradcam_maps(acts, grads, params.per_step_alpha, params.relu, params.aggregate)
