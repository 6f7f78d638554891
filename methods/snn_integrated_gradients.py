"""Integrated gradients through the SNN with the sample's fixed encoding."""

from __future__ import annotations

import torch

from bench.registry import METHODS
from methods._captum import IntegratedGradientsParams, integrated_gradients_map
from methods.base import ExplainInput


@METHODS.register(
    summary="Integrated gradients of the SNN (fixed per-sample encoding along the path)",
    model_kind="snn", temporal=False, needs_grad=True, needs_label=True, version="1",
    reference="Sundararajan et al., ICML 2017", params=IntegratedGradientsParams)
def snn_integrated_gradients(inp: ExplainInput, params: IntegratedGradientsParams) -> torch.Tensor:
    """``[B, H, W]``. Every path point of a sample reuses that sample's Poisson uniforms, so
    the path is a deterministic function of the interpolation coefficient."""
    return integrated_gradients_map(inp, params)
