"""``shapes``: the embedded default dataset -- procedural shapes with exact masks.

Each image shows one target object (one of the 10 classes of :data:`~bench.data._render.SHAPES`)
at a random position, scale, rotation and colour on a low-contrast textured background
(stripes + pixel noise), plus 0..``n_distractors_max`` distractors (thin lines, scribbles, small
blobs) that belong to no class and never touch the target (they keep a gap of ``size // 16``
pixels). Targets differ from the background by >= 0.3 in luminance (any hue; for the ~5% of
images where none of 16 colour draws does, the most contrasting one is used); distractors are
fainter (0.1-0.25), so the label is unambiguous while localization is not trivial. The target is
painted last and without anti-aliasing, so ``mask`` is exactly its visible pixels and ``box`` the
mask's tight box.

Everything is deterministic from ``(seed, split, index)``: sample ``index`` draws from
``sample_generator(seed, index, "shapes/<split>")``; ``label = index % num_classes`` (balanced).
Images are quantized to 8 bits like real photos and generated in fixed chunks of
:data:`CHUNK` samples, cached in memory per dataset instance.

Fast path for training loops: ``ds.tensors()`` returns all images ``[N, 3, H, W]`` float in
[0, 1], labels ``[N]``, masks ``[N, H, W]`` and boxes ``[N, 4]`` at once (a
:class:`bench.data.Tensors` named tuple); normalize with ``bench.data.base.normalize(images, ds.mean, ds.std)``.
"""

from __future__ import annotations

import dataclasses

import torch

from bench.config import config_hash
from bench.data import Tensors, _render
from bench.data._scene import render_chunk
from bench.data.base import Sample
from bench.errors import BenchError
from bench.registry import DATASETS

CHUNK = 256
#: Bump when the generator changes what it draws (part of the fingerprint).
GENERATOR_VERSION = 2
SPLITS = ("train", "val", "test")

# Per-channel statistics of the default train split (all 8000 images, 32x32, seed 0);
# tests/test_data_shapes.py::test_normalization_constants re-measures them.
SHAPES_MEAN = (0.5007, 0.5016, 0.4985)
SHAPES_STD = (0.2453, 0.2555, 0.2431)


@dataclasses.dataclass(frozen=True)
class ShapesParams:
    """Generator parameters. ``scale_min``/``scale_max``: object radius as a fraction of
    ``image_size`` (each class fits a disk of that radius)."""

    image_size: int = 32
    seed: int = 0
    n_train: int = 8000
    n_val: int = 1000
    n_test: int = 1000
    n_distractors_max: int = 2
    scale_min: float = 0.25
    scale_max: float = 0.36

    def __post_init__(self) -> None:
        check_common(self, max_scale=0.45)


def check_common(p: "ShapesParams", max_scale: float) -> None:
    """Cross-field checks shared by ``shapes`` and ``shapes_pair`` params."""
    if p.image_size < 16:
        raise ValueError(f"image_size must be >= 16, got {p.image_size}")
    if min(p.n_train, p.n_val, p.n_test) < 0:
        raise ValueError("n_train, n_val and n_test must be >= 0")
    if not 0 <= p.n_distractors_max <= 4:
        raise ValueError(f"n_distractors_max must be in 0..4, got {p.n_distractors_max}")
    if not 0.05 <= p.scale_min <= p.scale_max <= max_scale:
        raise ValueError(f"need 0.05 <= scale_min <= scale_max <= {max_scale}, "
                         f"got {p.scale_min}, {p.scale_max}")


# ---------------------------------------------------------------------------------------------
# The dataset object
# ---------------------------------------------------------------------------------------------

class SyntheticShapes:
    """A split of a procedural shapes dataset (satisfies ``bench.data.base.ImageDataset``).

    ``n_targets`` = 1 (``shapes``) or 2 (``shapes_pair``: ``parts``/``part_labels`` carry both
    objects, ``label``/``mask``/``box`` the left one).
    """

    channels = 3
    has_masks = True
    has_boxes = True

    def __init__(self, name: str, split: str, params, n_targets: int,
                 mean: tuple[float, ...], std: tuple[float, ...]):
        if split not in SPLITS:
            raise BenchError(f"{name}: unknown split {split!r} (choose from {', '.join(SPLITS)})")
        self.name, self.split, self.params, self.n_targets = name, split, params, n_targets
        self.class_names = tuple(_render.SHAPES)
        self.num_classes = len(self.class_names)
        self.image_size = params.image_size
        self.mean, self.std = mean, std
        self._n = {"train": params.n_train, "val": params.n_val, "test": params.n_test}[split]
        self._stage = f"{name}/{split}"
        self._chunks: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self._n

    def _chunk(self, c: int) -> dict[str, torch.Tensor]:
        if c not in self._chunks:
            indices = range(c * CHUNK, min((c + 1) * CHUNK, self._n))
            self._chunks[c] = render_chunk(self.params, self._stage, indices, self.n_targets)
        return self._chunks[c]

    def __getitem__(self, index: int) -> Sample:
        if not -self._n <= index < self._n:
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range ({self._n})")
        index %= self._n
        ch, j = self._chunk(index // CHUNK), index % CHUNK
        targets = ch["targets"][j]
        labels = ch["labels"][j]
        return Sample(
            image=ch["images"][j].float() / 255.0,
            label=int(labels[0]),
            sample_id=index,
            mask=targets[0],
            box=_render.mask_to_box(targets[:1])[0],
            parts=targets if self.n_targets > 1 else None,
            part_labels=labels if self.n_targets > 1 else None,
        )

    def _all(self, key: str) -> torch.Tensor:
        n_chunks = -(-self._n // CHUNK)
        return torch.cat([self._chunk(c)[key] for c in range(n_chunks)])

    def tensors(self) -> Tensors:
        """The whole split at once (generated on first use, then cached); see the module doc."""
        targets = self._all("targets")
        masks = targets[:, 0]
        return Tensors(images=self._all("images").float() / 255.0, labels=self._all("labels")[:, 0],
                       masks=masks, boxes=_render.mask_to_box(masks),
                       sample_ids=torch.arange(self._n))

    def distractor_masks(self) -> torch.Tensor:
        """``[N, H, W]`` bool: pixels painted by distractors (never touching a target)."""
        return self._all("distractors")

    def fingerprint(self) -> str:
        return config_hash({"dataset": self.name, "split": self.split,
                            "generator": GENERATOR_VERSION, "params": self.params})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}/{self.split}, n={self._n}, size={self.image_size})"


@DATASETS.register(summary=f"procedural shapes ({len(_render.SHAPES)} classes) with distractors and exact masks",
                   masks=True, boxes=True, source="embedded", params=ShapesParams)
def shapes(split: str, params: ShapesParams) -> SyntheticShapes:
    """One target shape per image on a textured background with 0-2 distractors."""
    return SyntheticShapes("shapes", split, params, 1, SHAPES_MEAN, SHAPES_STD)
