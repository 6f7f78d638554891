"""Occlusion sensitivity of the SNN (forward passes only; no surrogate gradient involved)."""

from __future__ import annotations

import torch

from bench.registry import METHODS
from methods._captum import OcclusionParams, occlusion_map
from methods.base import ExplainInput


@METHODS.register(
    summary="Occlusion sensitivity of the SNN (patch drop of the target logit; forward only)",
    model_kind="snn", temporal=False, needs_grad=False, needs_label=True, version="1",
    reference="Zeiler & Fergus, ECCV 2014", params=OcclusionParams)
def snn_occlusion(inp: ExplainInput, params: OcclusionParams) -> torch.Tensor:
    """``[B, H, W]``; each occluded copy keeps the sample's encoding uniforms, so the logit
    change is caused by the patch, not by fresh Poisson noise."""
    return occlusion_map(inp, params)
