"""Vanilla gradient saliency through the SNN (BPTT over all time steps, surrogate gradients)."""

from __future__ import annotations

import torch

from bench.registry import METHODS
from methods._captum import SaliencyParams, saliency_map
from methods.base import ExplainInput


@METHODS.register(
    summary="Input-gradient saliency of the SNN (BPTT through the surrogate, fixed encoding)",
    model_kind="snn", temporal=False, needs_grad=True, needs_label=True, version="1",
    reference="Simonyan et al., ICLR workshop 2014 (arXiv:1312.6034)", params=SaliencyParams)
def snn_saliency(inp: ExplainInput, params: SaliencyParams) -> torch.Tensor:
    """``[B, H, W]`` channel-reduced ``d logit_target / d x``; the Poisson encoder passes
    gradients straight through its firing probability (see :mod:`bench.models.encoders`)."""
    return saliency_map(inp, params)
