"""Integrated gradients (Sundararajan et al. 2017): one algorithm for both model kinds.

Registered twice: ``ann_integrated_gradients`` runs on the ANN twin,
``snn_integrated_gradients`` through the SNN. On the SNN every path point of a sample reuses
that sample's Poisson uniforms (see :mod:`methods._captum`), so the path is a deterministic
function of the interpolation coefficient. The two names differ only in the model they run on.
"""

from __future__ import annotations

import torch

from bench.registry import METHODS
from methods._captum import IntegratedGradientsParams, integrated_gradients_map
from methods.base import ExplainInput

_SHARED = dict(temporal=False, needs_grad=True, needs_label=True, version="1",
               reference="Sundararajan et al., ICML 2017", params=IntegratedGradientsParams)


@METHODS.register(name="snn_integrated_gradients", model_kind="snn", **_SHARED,
                  summary="Integrated gradients of the SNN (fixed per-sample encoding along the path)")
@METHODS.register(name="ann_integrated_gradients", model_kind="ann", summary="Integrated gradients of the ANN twin",
                  **_SHARED)
def integrated_gradients(inp: ExplainInput, params: IntegratedGradientsParams) -> torch.Tensor:
    """``[B, H, W]`` channel-reduced path-integrated gradients from a constant baseline."""
    return integrated_gradients_map(inp, params)
