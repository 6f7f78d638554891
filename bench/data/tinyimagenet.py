"""``tinyimagenet``: Tiny-ImageNet-200 from its standard folder layout (the paper's dataset).

Expected under ``root`` (or ``root/tiny-imagenet-200``)::

    wnids.txt                                 200 class ids, one a line (class order)
    words.txt                                 "wnid<TAB>name, synonym, ..." (optional)
    train/<wnid>/images/*.JPEG
    train/<wnid>/<wnid>_boxes.txt             "file<TAB>x0<TAB>y0<TAB>x1<TAB>y1"
    val/images/*.JPEG
    val/val_annotations.txt                   "file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1"

Boxes in these files are inclusive pixel coordinates on the 64x64 images; they become
half-open ``(x0, y0, x1 + 1, y1 + 1)`` and are scaled when ``image_size`` differs. Masks are the
box masks. The official test split has no labels, so split ``"test"`` reads the val images
(as do the paper and most work on Tiny-ImageNet); ``"val"`` is the same set.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.data._folder import IMAGENET_MEAN, IMAGENET_STD, FileDataset, Item, check_split, resolve_root
from bench.errors import BenchError
from bench.registry import DATASETS

Box = tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class TinyImageNetParams:
    """``root``: the data folder ("" = ``$SNNXAI_DATA/tinyimagenet`` or
    ``~/.cache/snnxai/data/tinyimagenet``)."""

    root: str = ""
    image_size: int = 64
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")



def _text(path: Path) -> str:
    """A Tiny-ImageNet annotation file as text; one that is not UTF-8 is a one-line error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path} is not a UTF-8 text file ({exc.reason} at byte {exc.start}): "
                         f"not a Tiny-ImageNet annotation file") from None

def find_base(root: Path) -> Path:
    """The folder holding ``wnids.txt`` (``root`` itself or ``root/tiny-imagenet-200``)."""
    for cand in (root, root / "tiny-imagenet-200"):
        if (cand / "wnids.txt").is_file():
            return cand
    raise BenchError(f"Tiny-ImageNet not found at {root}: download tiny-imagenet-200.zip "
                     "(http://cs231n.stanford.edu/tiny-imagenet-200.zip), unzip it there "
                     "or pass it as the dataset parameter root (snnxai run: --set "
                     "data.params.root=/path/to/tiny-imagenet-200; train/explain: --data-param root=...)")


def inclusive_box(fields: list[str], where: str) -> Box:
    """Four inclusive pixel coordinates -> a half-open box."""
    try:
        x0, y0, x1, y1 = (float(f) for f in fields)
    except ValueError:
        raise BenchError(f"{where}: expected four box coordinates, got {fields}") from None
    return (x0, y0, x1 + 1.0, y1 + 1.0)


def class_names(base: Path, wnids: list[str]) -> tuple[str, ...]:
    """First name of each wnid from words.txt (the wnid itself when words.txt is missing)."""
    words: dict[str, str] = {}
    if (base / "words.txt").is_file():
        for line in _text(base / "words.txt").splitlines():
            wnid, _, name = line.partition("\t")
            words[wnid.strip()] = name.split(",")[0].strip()
    return tuple(words.get(w) or w for w in wnids)


def train_items(base: Path, wnids: list[str]) -> tuple[list[Item], list[Path]]:
    items, notes = [], []
    for label, wnid in enumerate(wnids):
        boxes: dict[str, Box] = {}
        box_file = base / "train" / wnid / f"{wnid}_boxes.txt"
        if box_file.is_file():
            notes.append(box_file)
            for n, line in enumerate(_text(box_file).splitlines()):
                if line.strip():
                    f = line.split()
                    boxes[f[0]] = inclusive_box(f[1:5], f"{box_file}:{n + 1}")
        images = sorted((base / "train" / wnid / "images").glob("*.JPEG"))
        items += [Item(p, label, boxes.get(p.name)) for p in images]
    return items, notes


def val_items(base: Path, wnids: list[str]) -> tuple[list[Item], list[Path]]:
    ann = base / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise BenchError(f"Tiny-ImageNet val labels not found: {ann} is missing")
    index = {w: i for i, w in enumerate(wnids)}
    items = []
    for n, line in enumerate(_text(ann).splitlines()):
        if not line.strip():
            continue
        f = line.split()
        if f[1] not in index:
            raise BenchError(f"{ann}:{n + 1}: unknown wnid {f[1]!r} (not in wnids.txt)")
        items.append(Item(base / "val" / "images" / f[0], index[f[1]],
                          inclusive_box(f[2:6], f"{ann}:{n + 1}")))
    return sorted(items, key=lambda it: it.path.name), [ann]


@DATASETS.register(summary="Tiny-ImageNet-200 from a local folder, boxes from its annotation files",
                   masks=False, boxes=True, source="folder", params=TinyImageNetParams)
def tinyimagenet(split: str, params: TinyImageNetParams) -> FileDataset:
    """200 classes of 64x64 photos; split "test" reads the labelled val set."""
    check_split("tinyimagenet", split)
    base = find_base(resolve_root("tinyimagenet", params.root))
    wnids = [w.strip() for w in _text(base / "wnids.txt").split() if w.strip()]
    items, notes = train_items(base, wnids) if split == "train" else val_items(base, wnids)
    if not items:
        raise BenchError(f"Tiny-ImageNet at {base} has no {split} images")
    return FileDataset("tinyimagenet", split, params, base, items, class_names(base, wnids),
                       has_boxes=True, annotations=(base / "wnids.txt", *notes))
