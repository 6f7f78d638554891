"""``imagefolder``: any local folder of class sub-folders, with optional boxes.

Layouts (images are ``*.png``, ``*.jpg``, ``*.jpeg``, any case)::

    root/<class>/<image>                 one folder: files go to train/val/test by a stable hash
                                         of their relative path (``val_fraction``, ``test_fraction``)
    root/{train,val,test}/<class>/<image>  split folders, used as they are

Classes are the sorted sub-folder names (over all split folders, so labels agree across
splits). Optional boxes: a CSV (``params.boxes``, default ``root/boxes.csv`` when present) with
header ``filename,x0,y0,x1,y1``; ``filename`` is the image path relative to ``root``
(``cat/001.png`` or ``val/cat/001.png``) and the box is half-open ``x0 <= col < x1``,
``y0 <= row < y1`` in the original image's pixels (scaled with the image). Images without a
row get no box; masks are the box masks.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

from bench.data._folder import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD, FileDataset, Item, check_split, resolve_root
from bench.errors import BenchError
from bench.registry import DATASETS

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class ImageFolderParams:
    """``root``: "" means ``$SNNXAI_DATA/imagefolder`` or ``~/.cache/snnxai/data/imagefolder``.
    ``boxes``: CSV path ("" = ``root/boxes.csv`` if it exists)."""

    root: str = ""
    image_size: int = 64
    boxes: str = ""
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if not (0 <= self.val_fraction and 0 <= self.test_fraction and self.val_fraction + self.test_fraction < 1):
            raise ValueError("need val_fraction, test_fraction >= 0 with a sum below 1")


def hashed_split(rel: str, params: ImageFolderParams) -> str:
    """A file's split from a hash of its relative path: stable as files are added or removed."""
    u = int.from_bytes(hashlib.blake2b(rel.encode(), digest_size=8).digest(), "little") / 2.0 ** 64
    if u < params.test_fraction:
        return "test"
    return "val" if u < params.test_fraction + params.val_fraction else "train"


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_boxes(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """``filename -> (x0, y0, x1, y1)`` from a boxes CSV."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        need = ["filename", "x0", "y0", "x1", "y1"]
        if reader.fieldnames is None or any(c not in reader.fieldnames for c in need):
            raise BenchError(f"{path}: boxes CSV needs the columns {','.join(need)}, "
                             f"found {','.join(reader.fieldnames or [])}")
        out = {}
        for n, row in enumerate(reader, start=2):
            try:
                out[Path(row["filename"]).as_posix()] = tuple(float(row[c]) for c in need[1:])
            except (TypeError, ValueError):
                raise BenchError(f"{path}:{n}: bad box row {row}") from None
    return out


@DATASETS.register(summary="a local folder of class sub-folders, optional boxes CSV",
                   masks=False, boxes=True, source="folder", params=ImageFolderParams)
def imagefolder(split: str, params: ImageFolderParams) -> FileDataset:
    """Images in ``root/<class>/`` (or ``root/<split>/<class>/``); boxes from a CSV if given."""
    check_split("imagefolder", split)
    root = resolve_root("imagefolder", params.root)
    if not root.is_dir():
        raise BenchError(f"image folder not found at {root}: put one sub-folder of images per class "
                         "there (root/<class>/*.png) or pass the dataset parameter root (snnxai run: "
                         "--set data.params.root=/path; train/explain: --data-param root=/path)")
    split_dirs = [root / s for s in SPLITS if (root / s).is_dir()]
    if split_dirs:
        names = sorted({d.name for s in split_dirs for d in class_dirs(s)})
        folders = [(d, names.index(d.name)) for d in class_dirs(root / split)] if (root / split).is_dir() else []
    else:
        names = [d.name for d in class_dirs(root)]
        folders = [(d, i) for i, d in enumerate(class_dirs(root))]
    if not names:
        raise BenchError(f"image folder {root} has no class sub-folders (expected root/<class>/*.png)")
    box_path = Path(params.boxes).expanduser() if params.boxes else root / "boxes.csv"
    if params.boxes and not box_path.is_file():
        raise BenchError(f"boxes CSV not found: {box_path}")
    boxes = read_boxes(box_path) if box_path.is_file() else {}
    items = []
    for folder, label in folders:
        for p in images_in(folder):
            rel = p.relative_to(root).as_posix()
            if split_dirs or hashed_split(rel, params) == split:
                items.append(Item(p, label, boxes.get(rel)))
    if not items:
        raise BenchError(f"image folder {root} has no {split} images")
    return FileDataset("imagefolder", split, params, root, items, tuple(names),
                       has_boxes=bool(boxes), annotations=(box_path,) if boxes else ())
