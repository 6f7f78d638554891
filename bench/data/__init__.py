"""Datasets: the embedded synthetic ``shapes`` family, the ``digits`` family (cluttered
scikit-learn digits) and loaders for local image folders.

``get_dataset(name, split, params)`` is the one entry point; datasets register themselves in
``bench.registry.DATASETS`` from the modules of this package (imported on first lookup, so
importing ``bench.data`` stays cheap).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import torch

from bench.data.base import ImageDataset


class Tensors(NamedTuple):
    """A whole split in memory, returned by ``ds.tensors()`` of the in-memory datasets
    (``shapes``, ``shapes_pair``, ``digits``, ``cifar10``) for fast training loops.

    images ``[N, C, H, W]`` float in [0, 1] (not normalized: use
    ``bench.data.base.normalize(images, ds.mean, ds.std)``), labels ``[N]`` long,
    masks ``[N, H, W]`` bool or None, boxes ``[N, 4]`` float or None, sample_ids ``[N]`` long.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None
    boxes: torch.Tensor | None
    sample_ids: torch.Tensor


def get_dataset(name: str, split: str, params: dict[str, Any] | None = None) -> ImageDataset:
    """Build split ``split`` of dataset ``name`` from a (partial) params table.

    Unknown names, bad params and missing data folders raise ``BenchError``. Instances are
    memoized per (name, split, resolved params), so generated or decoded samples are shared.
    """
    from bench.registry import DATASETS

    entry = DATASETS.get(name)
    return _build(name, split, entry.make_params(params))


@functools.lru_cache(maxsize=8)
def _build(name: str, split: str, params: Any) -> ImageDataset:
    from bench.registry import DATASETS

    entry = DATASETS.get(name)
    ds = entry.obj(split, params)
    check_dataset(name, entry.spec, ds)
    return ds


def check_dataset(name: str, spec: Any, ds: ImageDataset) -> None:
    """The instance has what its family declares (:class:`bench.registry.DatasetSpec`): no
    masks or boxes the family does not declare, per-step masks and time steps exactly as
    declared, the declared number of classes. A mismatch is the dataset's bug, never the user's."""
    have = {"masks": ds.has_masks and not spec.masks, "boxes": ds.has_boxes and not spec.boxes,
            "step_masks": ds.has_step_masks != spec.step_masks,
            "time_varying": isinstance(getattr(ds, "steps", None), int) != spec.time_varying,
            "classes": spec.classes is not None and ds.num_classes != spec.classes}
    wrong = [k for k, bad in have.items() if bad]
    if wrong:
        raise RuntimeError(f"dataset {name!r} built an instance that contradicts its registered spec: {wrong}")
