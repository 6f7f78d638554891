"""Vanilla gradient saliency on the ANN twin."""

from __future__ import annotations

import torch

from bench.registry import METHODS
from methods._captum import SaliencyParams, saliency_map
from methods.base import ExplainInput


@METHODS.register(
    summary="Input-gradient saliency of the ANN twin",
    model_kind="ann", temporal=False, needs_grad=True, needs_label=True, version="1",
    reference="Simonyan et al., ICLR workshop 2014 (arXiv:1312.6034)", params=SaliencyParams)
def ann_saliency(inp: ExplainInput, params: SaliencyParams) -> torch.Tensor:
    """``[B, H, W]`` channel-reduced ``d logit_target / d x`` of the ANN."""
    return saliency_map(inp, params)
