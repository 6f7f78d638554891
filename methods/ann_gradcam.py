"""Grad-CAM on the ANN twin (Selvaraju et al. 2017), via captum's ``LayerGradCam``.

The paper compares SAM with "Grad-CAM on the ANN counterpart": the same topology with ReLU
activations. The layer is the twin's activation module of the same name (``conv4`` of the SNN
<-> ``conv4`` of the ANN), i.e. post-ReLU activations, as in the original Grad-CAM.

ReLU choice: captum's ``LayerGradCam`` applies no ReLU unless ``relu_attributions=True``; the
original Grad-CAM (and pytorch-grad-cam) does. We apply it by default (``relu=True``), so the
map is Selvaraju's ``ReLU(sum_k alpha_k A^k)``; ``relu=False`` gives captum's signed default.
"""

from __future__ import annotations

import dataclasses

import torch
from captum.attr import LayerGradCam

from bench.registry import METHODS
from methods._captum import forward_fn
from methods._common import require_spatial
from methods.base import ExplainInput


@dataclasses.dataclass(frozen=True)
class AnnGradCamParams:
    """relu: Grad-CAM's ReLU of the weighted sum (see module doc). layer: None = card default."""

    relu: bool = True
    layer: str | None = None


@METHODS.register(
    summary="Grad-CAM on the ANN twin at the matching layer (captum LayerGradCam, with ReLU)",
    model_kind="ann", temporal=False, needs_grad=True, needs_label=True, version="1",
    reference="Selvaraju et al., ICCV 2017", params=AnnGradCamParams, attack_gallery=True)
def ann_gradcam(inp: ExplainInput, params: AnnGradCamParams) -> torch.Tensor:
    """Raw maps ``[B, h, w]`` at the layer's resolution: ``ReLU(sum_k mean_ij(dy/dA^k) A^k)``."""
    from bench.models.record import layer_module

    cam = LayerGradCam(forward_fn(inp), layer_module(inp.model, inp.layer)).attribute(
        inp.x, target=inp.target.to(inp.x.device), additional_forward_args=(inp.sample_id,),
        relu_attributions=params.relu)
    return require_spatial(cam.detach(), inp.layer, dims=4)[:, 0]
