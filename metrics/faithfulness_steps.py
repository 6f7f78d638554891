"""Deletion and insertion scored on every time step's map, not only the time-aggregated one.

The same arithmetic as :func:`metrics.faithfulness.deletion` / ``insertion`` (and the
same params), registered ``per_timestep=True``: for a method with per-step maps (SAM, SNN
Grad-CAM) the runner also scores each step's map ``[B, H, W]``, so "which step's map is the
most faithful" is a column of the results (Kim & Panda 2021 show SAM per time step). The
row without a time step equals the plain metric's. The perturbation still acts on the input
at every step (the image is static); only the pixel ranking comes from step t's map.
"""

from __future__ import annotations

from bench.registry import METRICS
from metrics.base import ScoreInput, Scores
from metrics.faithfulness import PerturbationParams, _perturbation

#: what both metrics of this module register with (each adds its summary and direction)
_REG = dict(category="faithfulness", needs=frozenset({"model"}), output="curve", per_timestep=True,
            scope="explanation", version="1", params=PerturbationParams,
            reference="Petsiuk et al. 2018, RISE (BMVC); per step as Kim & Panda 2021")


@METRICS.register(summary="Deletion AUC of each time step's map (and of the aggregated map)",
                  higher_is_better=False, **_REG)
def deletion_per_step(inp: ScoreInput, params: PerturbationParams) -> Scores:
    return _perturbation(inp, params, "deletion")


@METRICS.register(summary="Insertion AUC of each time step's map (and of the aggregated map)",
                  higher_is_better=True, **_REG)
def insertion_per_step(inp: ScoreInput, params: PerturbationParams) -> Scores:
    return _perturbation(inp, params, "insertion")
