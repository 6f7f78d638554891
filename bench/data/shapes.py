"""``shapes``: the embedded default dataset -- procedural shapes with exact masks.

Two layouts (param ``layout``; the default is :data:`DEFAULT_LAYOUT`), each its own generator
version in the fingerprint, so results and caches of the two never mix:

- ``centred`` (generator version 2, described below): one large target near the middle. On the
  test split (1000 images, 32x32) the mask covers 14% of the image, its centroid lies 4.5 px from
  the centre on average, 71% of the masks cover a 2x2 centre pixel, and a fixed centre prior
  scores a pointing game of 0.85 -- too easy to rank explanations by localization.
- ``headroom`` (generator version 3, :mod:`bench.data._headroom`): a small target anywhere
  (radius 0.14-0.20 of the image, mask 4.4% of the image on average), 0-3 clutter objects
  of the same size and colour that belong to no class, and the faint distractors below. Centre
  prior pointing game 0.24, random 0.11 (the chance level). ``bench/data/SHAPES.md`` has the
  measured statistics of both layouts; ``scripts/data_stats.py`` re-measures them.

``texture`` (none / low / default / high) scales the background stripes and pixel noise in
either layout; ``default`` is the original level.

Each (centred) image shows one target object (one of the 10 classes of :data:`~bench.data._render.SHAPES`)
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
from typing import Any, Literal

import torch

from bench.config import config_hash, to_plain
from bench.data import Tensors, _headroom, _render
from bench.data._scene import TEXTURE, render_chunk
from bench.data.base import Sample
from bench.errors import BenchError
from bench.registry import DATASETS

CHUNK = 256
SPLITS = ("train", "val", "test")

Layout = Literal["centred", "headroom"]
Texture = Literal["none", "low", "default", "high"]

#: The layout a plain ``shapes`` (no ``layout`` param) generates. Switching the default data to
#: the headroom layout is this one line; the normalization constants follow the layout.
DEFAULT_LAYOUT: Layout = "headroom"

#: Generator version per layout (part of the fingerprint): bump when a layout changes what it draws.
GENERATOR_VERSIONS: dict[str, int] = {"centred": 2, "headroom": 3}

#: Per-layout defaults of the params left at None.
LAYOUT_DEFAULTS: dict[str, dict[str, float | int]] = {
    "centred": {"scale_min": 0.25, "scale_max": 0.36, "n_clutter_max": 0, "n_train": 8000},
    # radius 0.16-0.22 and 32k training images: the smallest objects the zoo's ANN still learns
    # to >= 97% in its budget (bench/data/SHAPES.md, "Learnability")
    "headroom": {"scale_min": 0.16, "scale_max": 0.22, "n_clutter_max": 3, "n_train": 32000},
}

#: Params added after generator version 2, with the values that reproduce it. They are left
#: out of :attr:`SyntheticShapes.params` (the identity that fingerprints, caches and zoo
#: sidecars record) while they hold these values, so the ``centred`` data keeps the identity
#: it had before they existed.
LEGACY_VALUES: dict[str, Any] = {"layout": "centred", "texture": "default", "n_clutter_max": 0}

# Per-channel statistics of the default-texture train split (all 8000 images, 32x32, seed 0)
# of each layout; tests/test_data_shapes.py::test_normalization_constants re-measures them.
SHAPES_MEAN = (0.5007, 0.5016, 0.4985)
SHAPES_STD = (0.2453, 0.2555, 0.2431)
HEADROOM_MEAN = (0.5006, 0.5032, 0.4964)
HEADROOM_STD = (0.2423, 0.2466, 0.2404)
NORMALIZATION = {"centred": (SHAPES_MEAN, SHAPES_STD), "headroom": (HEADROOM_MEAN, HEADROOM_STD)}


@dataclasses.dataclass(frozen=True)
class ShapesParams:
    """Generator parameters.

    layout: ``"centred"`` (generator version 2: one large object near the middle) or
        ``"headroom"`` (version 3: a small object anywhere plus salient clutter; see
        :mod:`bench.data._headroom`). Default :data:`DEFAULT_LAYOUT`.
    texture: background texture level, ``none`` < ``low`` < ``default`` < ``high`` (a factor
        0, 0.5, 1, 2 on the stripes' amplitude and the pixel noise).
    scale_min/scale_max: object radius as a fraction of ``image_size`` (each class fits a disk
        of that radius); None: the layout's default (:data:`LAYOUT_DEFAULTS`).
    n_clutter_max: clutter objects per image are uniform in 0..n_clutter_max (``headroom`` only;
        None: the layout's default).
    n_train: size of the train split (None: the layout's default, 8000 centred, 32000 headroom).
    """

    image_size: int = 32
    seed: int = 0
    n_train: int | None = None
    n_val: int = 1000
    n_test: int = 1000
    n_distractors_max: int = 2
    scale_min: float | None = None
    scale_max: float | None = None
    layout: Layout = DEFAULT_LAYOUT
    texture: Texture = "default"
    n_clutter_max: int | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUT_DEFAULTS:
            raise ValueError(f"layout must be one of {list(LAYOUT_DEFAULTS)}, got {self.layout!r}")
        if self.texture not in TEXTURE:
            raise ValueError(f"texture must be one of {list(TEXTURE)}, got {self.texture!r}")
        for key, value in LAYOUT_DEFAULTS[self.layout].items():
            if getattr(self, key) is None:  # resolve "the layout's default" once, here
                object.__setattr__(self, key, value)
        if self.layout == "centred" and self.n_clutter_max != 0:
            raise ValueError("n_clutter_max applies to layout 'headroom' only (the centred layout has no clutter)")
        if not 0 <= self.n_clutter_max <= 4:
            raise ValueError(f"n_clutter_max must be in 0..4, got {self.n_clutter_max}")
        check_common(self, max_scale=0.45)


def check_common(p: ShapesParams, max_scale: float) -> None:
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
    has_step_masks = False

    def __init__(self, name: str, split: str, params, n_targets: int,
                 mean: tuple[float, ...], std: tuple[float, ...]):
        if split not in SPLITS:
            raise BenchError(f"{name}: unknown split {split!r} (choose from {', '.join(SPLITS)})")
        self.name, self.split, self.spec, self.n_targets = name, split, params, n_targets
        # shapes_pair's params have no layout/texture: it is always the centred layout
        self.layout: str = getattr(params, "layout", "centred")
        self._texture = TEXTURE[getattr(params, "texture", "default")]
        self.class_names = tuple(_render.SHAPES)
        self.num_classes = len(self.class_names)
        self.image_size = params.image_size
        self.mean, self.std = mean, std
        self._n = {"train": params.n_train, "val": params.n_val, "test": params.n_test}[split]
        # the headroom layout draws from its own streams (no correlation with centred samples)
        self._stage = f"{name}/{split}" + ("/headroom" if self.layout == "headroom" else "")
        self._chunks: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def params(self) -> dict[str, Any]:
        """The generator params that identify the content (plain data, what fingerprints, model
        caches and zoo sidecars record): the resolved params without the :data:`LEGACY_VALUES`
        ones, so ``centred`` data keeps the identity it had before those params existed."""
        plain = to_plain(self.spec)
        return {k: v for k, v in plain.items() if not (k in LEGACY_VALUES and v == LEGACY_VALUES[k])}

    @property
    def generator_version(self) -> int:
        """:data:`GENERATOR_VERSIONS` of this dataset's layout."""
        return GENERATOR_VERSIONS[self.layout]

    def __len__(self) -> int:
        return self._n

    def _chunk(self, c: int) -> dict[str, torch.Tensor]:
        if c not in self._chunks:
            indices = range(c * CHUNK, min((c + 1) * CHUNK, self._n))
            if self.layout == "headroom":
                self._chunks[c] = _headroom.render_chunk(self.spec, self._stage, indices, self._texture)
            else:
                self._chunks[c] = render_chunk(self.spec, self._stage, indices, self.n_targets, self._texture)
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
        """``[N, H, W]`` bool: pixels painted by (faint) distractors (never touching a target)."""
        return self._all("distractors")

    def clutter_masks(self) -> torch.Tensor:
        """``[N, H, W]`` bool: pixels painted by salient clutter (``headroom`` layout; all False
        for ``centred``). Clutter keeps more than the pointing-game tolerance from the target."""
        if self.layout != "headroom":
            return torch.zeros(self._n, self.image_size, self.image_size, dtype=torch.bool)
        return self._all("clutter")

    def fingerprint(self) -> str:
        return config_hash({"dataset": self.name, "split": self.split,
                            "generator": self.generator_version, "params": self.params})

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name}/{self.split}, n={self._n}, size={self.image_size}, "
                f"layout={self.layout})")


@DATASETS.register(summary=f"procedural shapes ({len(_render.SHAPES)} classes) with distractors and exact masks",
                   masks=True, boxes=True, source="embedded", params=ShapesParams)
def shapes(split: str, params: ShapesParams) -> SyntheticShapes:
    """One target shape per image on a textured background (layout ``centred`` or ``headroom``)."""
    mean, std = NORMALIZATION[params.layout]
    return SyntheticShapes("shapes", split, params, 1, mean, std)
