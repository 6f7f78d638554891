"""Datasets: the embedded synthetic ``shapes`` family and loaders for local image folders.

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
    (``shapes``, ``shapes_pair``, ``cifar10``) for fast training loops.

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

    return DATASETS.get(name).obj(split, params)
