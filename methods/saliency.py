"""Vanilla gradient saliency (Simonyan et al. 2014): one algorithm for both model kinds.

Registered twice: ``ann_saliency`` runs on the ANN twin, ``snn_saliency`` through the SNN
(BPTT over all time steps and the surrogate, with the sample's fixed encoding; the Poisson
encoder passes gradients straight through its firing probability, see
:mod:`bench.models.encoders`). The two names differ only in the model they run on.
"""

from __future__ import annotations

import torch

from bench.registry import METHODS
from methods._captum import SaliencyParams, saliency_map
from methods.base import ExplainInput

_SHARED = dict(temporal=False, needs_grad=True, needs_label=True, version="1",
               reference="Simonyan et al., ICLR workshop 2014 (arXiv:1312.6034)", params=SaliencyParams)


@METHODS.register(name="snn_saliency", model_kind="snn", **_SHARED,
                  summary="Input-gradient saliency of the SNN (BPTT through the surrogate, fixed encoding)")
@METHODS.register(name="ann_saliency", model_kind="ann", summary="Input-gradient saliency of the ANN twin",
                  **_SHARED)
def saliency(inp: ExplainInput, params: SaliencyParams) -> torch.Tensor:
    """``[B, H, W]`` channel-reduced ``d logit_target / d x`` of ``inp.model``."""
    return saliency_map(inp, params)
