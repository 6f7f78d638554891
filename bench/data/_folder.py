"""Shared pieces of the datasets read from local folders (cifar10, tinyimagenet, imagefolder).

Data roots: ``params.root`` when given, else ``$SNNXAI_DATA/<name>``, else
``~/.cache/snnxai/data/<name>``. Nothing is ever downloaded unless a dataset's params say so.
Images are resized (bilinear, squashing non-square images) to ``image_size``; boxes given in
the original pixel grid are scaled with them. Masks of box-only datasets are the box masks.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from bench.data.base import Sample, box_to_mask
from bench.errors import BenchError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def resolve_root(name: str, root: str) -> Path:
    """The folder a dataset is read from (see the module doc)."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get("SNNXAI_DATA")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "snnxai" / "data"
    return base / name


def check_split(name: str, split: str, splits: tuple[str, ...] = ("train", "val", "test")) -> None:
    if split not in splits:
        raise BenchError(f"{name}: unknown split {split!r} (choose from {', '.join(splits)})")


def listing_fingerprint(name: str, split: str, base: Path, files: list[Path], extra: object = "") -> str:
    """Short hash of the sorted relative file listing with sizes (plus ``extra``, e.g. params)."""
    h = hashlib.sha256(f"{name}|{split}|{extra}".encode())
    for f in sorted(files):
        h.update(f"{f.relative_to(base).as_posix()}|{f.stat().st_size}\n".encode())
    return h.hexdigest()[:12]


def load_image(path: Path, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Read an image as RGB, resized to ``size`` x ``size``.

    Returns ``[3, size, size]`` float in [0, 1] and the original ``(width, height)``.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            orig = im.size
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError) as exc:  # PIL: unidentified, truncated or corrupt file
        raise BenchError(f"cannot read image {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                         "replace or delete the file") from None
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0, orig


def scale_box(box: tuple[float, float, float, float], orig: tuple[int, int], size: int) -> torch.Tensor:
    """A half-open box in the original ``(width, height)`` grid -> ``[4]`` in the resized grid."""
    sx, sy = size / orig[0], size / orig[1]
    x0, y0, x1, y1 = box
    return torch.tensor([x0 * sx, y0 * sy, x1 * sx, y1 * sy], dtype=torch.float32)


class Item(NamedTuple):
    """One image file: its path, class index and optional half-open box in original pixels."""

    path: Path
    label: int
    box: tuple[float, float, float, float] | None = None


class FileDataset:
    """Images read from files on demand (satisfies ``bench.data.base.ImageDataset``).

    ``has_masks`` is False: the ``mask`` of a sample with a box is that box's mask
    (``box_to_mask``), as the data contract asks of box-only datasets.
    """

    channels = 3
    has_masks = False
    has_step_masks = False

    def __init__(self, name: str, split: str, params, base: Path, items: list[Item],
                 class_names: tuple[str, ...], has_boxes: bool, annotations: tuple[Path, ...] = ()):
        self.name, self.split, self.params, self.base = name, split, params, base
        self.annotations = annotations  # label/box files, part of the fingerprint
        self.items, self.class_names = items, class_names
        self.num_classes = len(class_names)
        self.image_size = params.image_size
        self.mean, self.std = tuple(params.mean), tuple(params.std)
        self.has_boxes = has_boxes
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Sample:
        item = self.items[index]
        index %= len(self.items)
        image, orig = load_image(item.path, self.image_size)
        box = None if item.box is None else scale_box(item.box, orig, self.image_size)
        mask = None if box is None else box_to_mask(box, self.image_size, self.image_size)
        return Sample(image=image, label=item.label, sample_id=index, mask=mask, box=box)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = listing_fingerprint(
                self.name, self.split, self.base, [it.path for it in self.items] + list(self.annotations),
                extra=(self.image_size, self.mean, self.std))
        return self._fingerprint

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}/{self.split}, n={len(self)}, root={self.base})"
