"""The data contract shared by every dataset, method, metric and the runner.

A dataset yields :class:`Sample` objects (unnormalized images in [0, 1]); the model input is
the dataset-normalized image. :func:`collate` stacks samples into a :class:`Batch`.

Coordinates: masks are ``[H, W]`` booleans indexed ``mask[row, col]``; boxes are
``(x0, y0, x1, y1)`` in pixel units with x = column and y = row, half-open
(``x0 <= col < x1``). :func:`box_to_mask` is the one place that converts them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

import torch


@dataclasses.dataclass(frozen=True)
class Sample:
    """One sample.

    image: ``[C, H, W]`` float in [0, 1] (not normalized).
    label: target class index.
    mask: ``[H, W]`` bool, the target object's pixels (None when the dataset has no masks;
        a box-only dataset fills it from the box).
    box: ``[4]`` float ``(x0, y0, x1, y1)`` of the target object, or None.
    sample_id: a stable integer id, unique within (dataset, split); keys all randomness.
    parts: optional ``[K, H, W]`` bool masks of K labelled objects (``shapes_pair``).
    part_labels: optional ``[K]`` long labels of those objects.
    step_mask: optional ``[T, H, W]`` bool, the target's pixels at each time step (time-varying
        datasets; ``mask`` is then their union over the steps).
    step_box: optional ``[T, 4]`` float, the tight box of each step's mask.
    track: optional ``[T, 2]`` float ``(x, y)`` px, the target's centre at each step.
    """

    image: torch.Tensor
    label: int
    sample_id: int
    mask: torch.Tensor | None = None
    box: torch.Tensor | None = None
    parts: torch.Tensor | None = None
    part_labels: torch.Tensor | None = None
    step_mask: torch.Tensor | None = None
    step_box: torch.Tensor | None = None
    track: torch.Tensor | None = None


@dataclasses.dataclass(frozen=True)
class Batch:
    """A batch in model input space.

    x: ``[B, C, H, W]`` normalized with the dataset's mean/std (the model's input).
    y: ``[B]`` long labels.
    sample_id: ``[B]`` long ids.
    mask: ``[B, H, W]`` bool or None.  box: ``[B, 4]`` float or None.
    parts / part_labels: ``[B, K, H, W]`` / ``[B, K]`` or None.
    step_mask / step_box / track: ``[B, T, H, W]`` bool / ``[B, T, 4]`` / ``[B, T, 2]`` or None
        (batch-first like every field; :func:`step_masks` gives the masks time-first).
    """

    x: torch.Tensor
    y: torch.Tensor
    sample_id: torch.Tensor
    mask: torch.Tensor | None = None
    box: torch.Tensor | None = None
    parts: torch.Tensor | None = None
    part_labels: torch.Tensor | None = None
    step_mask: torch.Tensor | None = None
    step_box: torch.Tensor | None = None
    track: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        return dataclasses.replace(self, **{
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self) if getattr(self, f.name) is not None})

    def select(self, index: torch.Tensor | slice) -> Batch:
        """Rows ``index`` of every field."""
        return dataclasses.replace(self, **{
            f.name: getattr(self, f.name)[index]
            for f in dataclasses.fields(self) if getattr(self, f.name) is not None})


class ImageDataset(Protocol):
    """What every registered dataset factory returns.

    Attributes: ``name``, ``split``, ``num_classes``, ``class_names``, ``image_size`` (H == W),
    ``channels``, ``mean`` / ``std`` (normalization statistics, per channel, belong to the
    dataset), ``has_masks``, ``has_boxes``, ``has_step_masks`` (a mask per time step).
    Time-varying datasets also have ``steps`` (T).
    """

    name: str
    split: str
    num_classes: int
    class_names: Sequence[str]
    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    has_masks: bool
    has_boxes: bool
    has_step_masks: bool

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...

    def fingerprint(self) -> str:
        """A short hash identifying the exact content (generator params or file listing)."""
        ...


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``[..., C, H, W]`` in [0, 1] -> normalized model input."""
    m = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    return (images - m) / s


def denormalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Inverse of :func:`normalize`: model input -> ``[..., C, H, W]`` pixel scale."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return x * s + m


def box_to_mask(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[4]`` or ``[B, 4]`` boxes ``(x0, y0, x1, y1)`` -> ``[H, W]`` / ``[B, H, W]`` bool masks.

    x indexes columns and y rows (the Score-CAM reference swaps them for non-square boxes).
    """
    b = box.reshape(-1, 4).float()
    cols = torch.arange(width, device=box.device).view(1, 1, width).float() + 0.5
    rows = torch.arange(height, device=box.device).view(1, height, 1).float() + 0.5
    m = ((cols >= b[:, 0, None, None]) & (cols < b[:, 2, None, None])
         & (rows >= b[:, 1, None, None]) & (rows < b[:, 3, None, None]))
    return m[0] if box.dim() == 1 else m


def collate(samples: Sequence[Sample], mean: Sequence[float], std: Sequence[float]) -> Batch:
    """Stack samples into a normalized :class:`Batch` (fields present only if all samples have them)."""
    def stack(attr: str) -> torch.Tensor | None:
        vals = [getattr(s, attr) for s in samples]
        return None if any(v is None for v in vals) else torch.stack(vals)

    images = torch.stack([s.image for s in samples])
    return Batch(
        x=normalize(images, mean, std),
        y=torch.tensor([s.label for s in samples], dtype=torch.long),
        sample_id=torch.tensor([s.sample_id for s in samples], dtype=torch.long),
        mask=stack("mask"),
        box=stack("box"),
        parts=stack("parts"),
        part_labels=stack("part_labels"),
        step_mask=stack("step_mask"),
        step_box=stack("step_box"),
        track=stack("track"),
    )


def step_masks(batch: Batch, steps: int | None = None) -> torch.Tensor | None:
    """The batch's per-step masks time-first, ``[T, B, H, W]`` bool.

    A time-varying batch gives its ``step_mask`` transposed; a static batch its ``mask``
    broadcast over ``steps`` steps (1 when None), so per-step scoring treats both alike.
    None when the batch has no mask at all."""
    if batch.step_mask is not None:
        if steps is not None and steps != batch.step_mask.shape[1]:
            raise ValueError(f"asked for {steps} steps of masks with {batch.step_mask.shape[1]} steps")
        return batch.step_mask.transpose(0, 1)
    if batch.mask is None:
        return None
    return batch.mask.unsqueeze(0).expand(steps or 1, *batch.mask.shape)


def load_batch(dataset: ImageDataset, indices: Sequence[int]) -> Batch:
    """Collate ``dataset[i]`` for ``i`` in ``indices`` with the dataset's own normalization."""
    return collate([dataset[int(i)] for i in indices], dataset.mean, dataset.std)
