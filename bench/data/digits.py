"""``digits``: cluttered handwritten digits from scikit-learn's bundled 8x8 digits (no download).

A second data family with real, human-made strokes and exact masks (issue 30), unrelated to the
``shapes`` renderer: one whole digit, upscaled to ``digit_min``..``digit_max`` of the canvas
side, sits anywhere on a textured canvas among 0..``n_fragments_max`` fragments cut from other
digits of the same pool (the "cluttered MNIST" construction of attention and localization
work). The class is the whole digit's label; the mask is the digit's strokes, its bilinearly
upscaled ink thresholded at ``threshold`` (the painted pixels exactly, no anti-aliasing); the
fragments' pixels are :meth:`ClutteredDigits.clutter_masks`. Rendering: :mod:`bench.data._digits`.

Pools: the 1,797 source images are split once, stratified by class and seeded by ``pool_seed``
(not by the scene ``seed``), into disjoint train / val / test pools (70 / 10 / 20%): every
scene of a split, its digit and its fragments, draws only from that split's pool, so no test
digit image is ever seen in training. Scenes are free: ``n_train`` scenes recombine the
1,259 train images at new positions, sizes, colours and clutter.

Everything is deterministic from ``(seed, split, index)`` and the params; ``label = index % 10``
(balanced). 32x32 RGB by default, like ``shapes``: the zoo's ``vgg5`` cards, their budget and
their recipes carry over, and a suite switches family with ``--set data.dataset=digits``.
``bench/data/DIGITS.md`` has the measured statistics (``python scripts/data_stats.py --dataset digits``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from bench.config import config_hash, to_plain
from bench.data import Tensors, _digits, _render
from bench.data._scene import TEXTURE
from bench.data.base import Sample
from bench.errors import BenchError
from bench.registry import DATASETS

CHUNK = 256
SPLITS = ("train", "val", "test")
#: Bump when the generator changes what it draws (part of the fingerprint).
GENERATOR_VERSION = 1

Texture = Literal["none", "low", "default", "high"]

# Per-channel statistics of the default train split (first 8192 scenes, 32x32, seed 0);
# tests/test_data_digits.py::test_normalization_constants re-measures them on a sample.
DIGITS_MEAN = (0.4994, 0.5013, 0.5005)
DIGITS_STD = (0.2395, 0.2467, 0.2384)


@dataclasses.dataclass(frozen=True)
class DigitsParams:
    """Generator parameters.

    digit_min/digit_max: the digit's side (its 8x8 grid upscaled) as a fraction of
        ``image_size``: 0.33-0.45, i.e. 10.6-14.4 px at 32 (see ``bench/data/DIGITS.md`` for why).
    n_fragments_max: fragments per scene, uniform in 0..n (at most 4).
    fragment_min/fragment_max: a fragment's window side as a fraction of the 8x8 source grid
        (0.3-0.5: a part of a stroke or a corner of a loop, never a whole digit), drawn at the
        scene digit's scale.
    threshold: ink level (fraction of scikit-learn's 16) from which an upscaled pixel is stroke.
    texture: background texture level as in ``shapes`` (none / low / default / high).
    pool_seed, test_fraction, val_fraction: the one-time split of the source images.
    """

    image_size: int = 32
    seed: int = 0
    n_train: int = 32000
    n_val: int = 1000
    n_test: int = 1000
    digit_min: float = 0.33
    digit_max: float = 0.45
    n_fragments_max: int = 4
    fragment_min: float = 0.3
    fragment_max: float = 0.5
    threshold: float = 0.5
    texture: Texture = "default"
    pool_seed: int = 0
    test_fraction: float = 0.2
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")
        if min(self.n_train, self.n_val, self.n_test) < 0:
            raise ValueError("n_train, n_val and n_test must be >= 0")
        if not 0.2 <= self.digit_min <= self.digit_max <= 0.9:
            raise ValueError(f"need 0.2 <= digit_min <= digit_max <= 0.9, got {self.digit_min}, {self.digit_max}")
        if not 0 <= self.n_fragments_max <= 4:
            raise ValueError(f"n_fragments_max must be in 0..4, got {self.n_fragments_max}")
        if not 0.2 <= self.fragment_min <= self.fragment_max <= 0.7:
            raise ValueError(f"need 0.2 <= fragment_min <= fragment_max <= 0.7 (a part of a digit), "
                             f"got {self.fragment_min}, {self.fragment_max}")
        if not 0.05 <= self.threshold <= 0.95:
            raise ValueError(f"threshold must be in [0.05, 0.95], got {self.threshold}")
        if self.texture not in TEXTURE:
            raise ValueError(f"texture must be one of {list(TEXTURE)}, got {self.texture!r}")
        if not (0.05 <= self.test_fraction and 0.0 <= self.val_fraction
                and self.test_fraction + self.val_fraction <= 0.5):
            raise ValueError("need test_fraction >= 0.05, val_fraction >= 0 and their sum <= 0.5")


class ClutteredDigits:
    """A split of the ``digits`` family (satisfies ``bench.data.base.ImageDataset``)."""

    channels = 3
    has_masks = True
    has_boxes = True
    has_step_masks = False
    num_classes = 10
    class_names = tuple(str(k) for k in range(10))
    mean, std = DIGITS_MEAN, DIGITS_STD

    def __init__(self, name: str, split: str, params: DigitsParams):
        if split not in SPLITS:
            raise BenchError(f"{name}: unknown split {split!r} (choose from {', '.join(SPLITS)})")
        self.name, self.split, self.spec = name, split, params
        self.image_size = params.image_size
        self._texture = TEXTURE[params.texture]
        self._n = {"train": params.n_train, "val": params.n_val, "test": params.n_test}[split]
        self._stage = f"{name}/{split}"
        self._chunks: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def params(self) -> dict[str, Any]:
        """The generator params that identify the content (plain data)."""
        return to_plain(self.spec)

    @property
    def pool(self) -> torch.Tensor:
        """``[P]`` long: the source images this split's scenes draw from (indices into
        ``sklearn.datasets.load_digits()``)."""
        p = self.spec
        return _digits.pools(p.pool_seed, p.test_fraction, p.val_fraction)[self.split]

    def __len__(self) -> int:
        return self._n

    def _chunk(self, c: int) -> dict[str, torch.Tensor]:
        if c not in self._chunks:
            indices = range(c * CHUNK, min((c + 1) * CHUNK, self._n))
            self._chunks[c] = _digits.render_chunk(self.spec, self._stage, indices, self.pool, self._texture)
        return self._chunks[c]

    def __getitem__(self, index: int) -> Sample:
        if not -self._n <= index < self._n:
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range ({self._n})")
        index %= self._n
        ch, j = self._chunk(index // CHUNK), index % CHUNK
        mask = ch["targets"][j]
        return Sample(image=ch["images"][j].float() / 255.0, label=int(ch["labels"][j]), sample_id=index,
                      mask=mask, box=_render.mask_to_box(mask[None])[0])

    def _all(self, key: str) -> torch.Tensor:
        n_chunks = -(-self._n // CHUNK)
        return torch.cat([self._chunk(c)[key] for c in range(n_chunks)])

    def tensors(self) -> Tensors:
        """The whole split at once (generated on first use, then cached): images
        ``[N, 3, H, W]`` in [0, 1], labels ``[N]``, masks ``[N, H, W]``, boxes ``[N, 4]``."""
        masks = self._all("targets")
        return Tensors(images=self._all("images").float() / 255.0, labels=self._all("labels"), masks=masks,
                       boxes=_render.mask_to_box(masks), sample_ids=torch.arange(self._n))

    def clutter_masks(self) -> torch.Tensor:
        """``[N, H, W]`` bool: the fragments' pixels (kept more than the pointing-game tolerance
        away from the digit, so pointing at a fragment is never a hit)."""
        return self._all("fragments")

    def sources(self) -> torch.Tensor:
        """``[N]`` long: each scene's digit, as an index into ``load_digits()``."""
        return self._all("sources")

    def fragment_sources(self) -> torch.Tensor:
        """``[N, n_fragments_max]`` long: each fragment's source image (-1: an empty slot)."""
        return self._all("fragment_sources")

    def placements(self) -> torch.Tensor:
        """``[N, 3]`` float: the digit's ``(x0, y0, side)`` in px (its 8x8 grid's square)."""
        return self._all("place")

    def fingerprint(self) -> str:
        _, _, source_sha = _digits.source_digits()
        return config_hash({"dataset": self.name, "split": self.split, "generator": GENERATOR_VERSION,
                            "source_sha256": source_sha, "params": self.params})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}/{self.split}, n={self._n}, size={self.image_size})"


@DATASETS.register(summary="cluttered handwritten digits (scikit-learn's 8x8, upscaled) with fragments and exact "
                           "stroke masks", masks=True, boxes=True, source="embedded", params=DigitsParams)
def digits(split: str, params: DigitsParams) -> ClutteredDigits:
    """One whole digit anywhere on a textured canvas among fragments of other digits."""
    return ClutteredDigits("digits", split, params)
