"""Which of two objects an explanation looks at: the share of the map's mass on one object.

For ``shapes_pair`` (Kim & Panda 2021's "sensory suppression": two images side by side, the
network's focus followed over time). The batch carries ``parts`` ``[B, 2, H, W]`` (the left,
then the right object's mask); the metric is scored per time step, so the per-step rows say
which object a spiking layer's map favours at step t. Swept over ``object`` in a suite
(``[metrics.object_mass_share.sweep] object = ["left", "right"]``) it gives both shares. On a
single-object dataset (no ``parts``) "left" is the object's mask and "right" an empty region
(NaN).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from bench.registry import METRICS
from metrics._localization import energy_pointing_game  # the share of mass inside a region
from metrics.base import ScoreInput, Scores

_INDEX = {"left": 0, "right": 1}


@dataclasses.dataclass(frozen=True)
class ObjectShareParams:
    """object: "left" (the labelled object, ``parts[:, 0]``) or "right" (``parts[:, 1]``)."""

    object: Literal["left", "right"] = "left"

    def __post_init__(self) -> None:
        if self.object not in _INDEX:
            raise ValueError(f"object must be 'left' or 'right', got {self.object!r}")


@METRICS.register(summary="Share of the map's mass on one object of a pair (left = labelled)",
                  category="localization", higher_is_better=True, needs=frozenset({"mask"}),
                  output="scalar", per_timestep=True, scope="explanation", version="1",
                  reference="Kim & Panda 2021 (Sci. Rep.), sensory suppression",
                  params=ObjectShareParams)
def object_mass_share(inp: ScoreInput, params: ObjectShareParams) -> Scores:
    """``[B]`` the energy pointing game's share of mass, on one object's mask: 0 for an all-zero
    map, the area share for a constant map, NaN for an empty region."""
    parts = inp.batch.parts
    if parts is None or parts.shape[1] < 2:
        # a single-object dataset: "left" is its one (labelled) object, "right" does not exist
        region = inp.batch.mask.bool() if params.object == "left" else torch.zeros_like(inp.maps, dtype=torch.bool)
        return Scores(values=energy_pointing_game(inp.maps, region))
    return Scores(values=energy_pointing_game(inp.maps, parts[:, _INDEX[params.object]].bool()))
