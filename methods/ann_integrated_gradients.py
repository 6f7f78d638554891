"""Integrated gradients on the ANN twin."""

from __future__ import annotations

import torch

from bench.registry import METHODS
from methods._captum import IntegratedGradientsParams, integrated_gradients_map
from methods.base import ExplainInput


@METHODS.register(
    summary="Integrated gradients of the ANN twin",
    model_kind="ann", temporal=False, needs_grad=True, needs_label=True, version="1",
    reference="Sundararajan et al., ICML 2017", params=IntegratedGradientsParams)
def ann_integrated_gradients(inp: ExplainInput, params: IntegratedGradientsParams) -> torch.Tensor:
    """``[B, H, W]`` channel-reduced path-integrated gradients from a constant baseline."""
    return integrated_gradients_map(inp, params)
