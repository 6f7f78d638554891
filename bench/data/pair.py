"""``shapes_pair``: two target objects of different classes, one in each half of the image.

For the paper's "sensory suppression" analysis: does an explanation of class A light up the
object of class B? Same generator as :mod:`bench.data.shapes` (background, colours,
distractors), with the object radius bounded so each object fits its half.

Per sample, ``parts`` ``[2, H, W]`` holds the LEFT then the RIGHT object's mask and
``part_labels`` ``[2]`` their classes (always different). ``label``, ``mask`` and ``box``
refer to the LEFT object, so a pair sample can be fed to every single-target method and
metric unchanged; the right object is reached through ``parts[1]`` / ``part_labels[1]``.
Labels of the left object are balanced (``index % num_classes``).
"""

from __future__ import annotations

import dataclasses

from bench.data.shapes import SyntheticShapes, check_common
from bench.registry import DATASETS

# Per-channel statistics of the default train split (all 8000 images, 32x32, seed 0);
# tests/test_data_shapes.py::test_normalization_constants re-measures them.
PAIR_MEAN = (0.5000, 0.4987, 0.5016)
PAIR_STD = (0.2446, 0.2526, 0.2424)


@dataclasses.dataclass(frozen=True)
class ShapesPairParams:
    """Like :class:`~bench.data.shapes.ShapesParams`; the radius fraction is at most 0.23 so
    that each object fits its half of the image."""

    image_size: int = 32
    seed: int = 0
    n_train: int = 8000
    n_val: int = 1000
    n_test: int = 1000
    n_distractors_max: int = 2
    scale_min: float = 0.17
    scale_max: float = 0.23

    def __post_init__(self) -> None:
        check_common(self, max_scale=0.23)


@DATASETS.register(summary="two shapes of different classes side by side, a mask per object",
                   masks=True, boxes=True, source="embedded", params=ShapesPairParams)
def shapes_pair(split: str, params: ShapesPairParams) -> SyntheticShapes:
    """Left and right target objects; ``label``/``mask``/``box`` describe the left one."""
    return SyntheticShapes("shapes_pair", split, params, 2, PAIR_MEAN, PAIR_STD)
