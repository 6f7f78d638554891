"""Input x gradient through the SNN."""

from __future__ import annotations

import torch

from bench.registry import METHODS
from methods._captum import InputXGradientParams, input_x_gradient_map
from methods.base import ExplainInput


@METHODS.register(
    summary="Input x gradient of the SNN (BPTT through the surrogate, fixed encoding)",
    model_kind="snn", temporal=False, needs_grad=True, needs_label=True, version="1",
    reference="Shrikumar et al., arXiv:1605.01713 (2016)", params=InputXGradientParams)
def snn_input_x_gradient(inp: ExplainInput, params: InputXGradientParams) -> torch.Tensor:
    """``[B, H, W]`` channel-reduced ``x * d logit_target / d x`` (x normalized)."""
    return input_x_gradient_map(inp, params)
