"""``cifar10``: CIFAR-10 from the standard ``cifar-10-batches-py`` pickles in a local folder.

The pickles are read here rather than through torchvision, whose loader insists on the md5 sums
of the official files. ``params.download = true`` (only when the user asks) fetches them with
``torchvision.datasets.CIFAR10(download=True)`` first.

Splits: ``train`` = the 50000 training images minus the last ``n_val``; ``val`` = those last
``n_val``; ``test`` = ``test_batch``. No masks or boxes. The whole split is held in memory as
uint8; ``tensors()`` returns it like the synthetic datasets do.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.data import Tensors
from bench.data._folder import check_split, listing_fingerprint, resolve_root
from bench.data.base import Sample
from bench.errors import BenchError
from bench.registry import DATASETS

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
# The usual per-channel statistics of the CIFAR-10 training set.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


@dataclasses.dataclass(frozen=True)
class Cifar10Params:
    """``root``: folder holding ``cifar-10-batches-py`` (or that folder itself); "" means
    ``$SNNXAI_DATA/cifar10`` or ``~/.cache/snnxai/data/cifar10``."""

    root: str = ""
    image_size: int = 32
    download: bool = False
    n_val: int = 5000
    mean: tuple[float, float, float] = CIFAR_MEAN
    std: tuple[float, float, float] = CIFAR_STD

    def __post_init__(self) -> None:
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if not 0 <= self.n_val < 50000:
            raise ValueError(f"n_val must be in 0..49999, got {self.n_val}")


def find_batches(root: Path, download: bool) -> Path:
    for cand in (root / FOLDER, root):
        if (cand / "test_batch").is_file():
            return cand
    if download:
        from torchvision.datasets import CIFAR10

        CIFAR10(str(root), train=True, download=True)
        return root / FOLDER
    raise BenchError(f"CIFAR-10 not found at {root}: put the python version ({FOLDER}, from "
                     "https://www.cs.toronto.edu/~kriz/cifar.html) there, pass the dataset parameter root=/path, "
                     "or allow download=true (snnxai run: --set data.params.root=/path / --set "
                     "data.params.download=true; train/explain: --data-param root=/path / --data-param download=true)")


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One pickle -> images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` long."""
    if not path.is_file():
        raise BenchError(f"CIFAR-10 file missing: {path}")
    with open(path, "rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    data = torch.as_tensor(d[b"data"], dtype=torch.uint8).reshape(-1, 3, 32, 32)
    return data, torch.as_tensor(d[b"labels"], dtype=torch.long)


def read_names(base: Path) -> tuple[str, ...]:
    meta = base / "batches.meta"
    if not meta.is_file():
        return ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    with open(meta, "rb") as fh:
        d = pickle.load(fh, encoding="bytes")
    return tuple(n.decode() for n in d[b"label_names"])


class Cifar10:
    """A CIFAR-10 split held in memory (satisfies ``bench.data.base.ImageDataset``)."""

    name = "cifar10"
    channels = 3
    has_masks = False
    has_boxes = False

    def __init__(self, split: str, params: Cifar10Params):
        check_split(self.name, split)
        self.split, self.params = split, params
        self.base = find_batches(resolve_root(self.name, params.root), params.download)
        self.files = [self.base / f for f in (("test_batch",) if split == "test" else TRAIN_FILES)]
        parts = [read_batch(f) for f in self.files]
        images, labels = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        if split != "test":
            cut = len(labels) - params.n_val
            images, labels = (images[:cut], labels[:cut]) if split == "train" else (images[cut:], labels[cut:])
        self.images, self.labels = images, labels
        self.class_names = read_names(self.base)
        self.num_classes = len(self.class_names)
        self.image_size = params.image_size
        self.mean, self.std = params.mean, params.std

    def __len__(self) -> int:
        return len(self.labels)

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255.0
        if self.image_size != x.shape[-1]:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False, antialias=True).clamp(0.0, 1.0)
        return x

    def __getitem__(self, index: int) -> Sample:
        index = range(len(self))[index]  # IndexError past the end, negative indices wrap
        return Sample(image=self._resize(self.images[index:index + 1])[0],
                      label=int(self.labels[index]), sample_id=index)

    def tensors(self) -> Tensors:
        """The whole split: images ``[N, 3, H, W]`` float in [0, 1] and labels; no masks/boxes."""
        return Tensors(images=self._resize(self.images), labels=self.labels.clone(), masks=None,
                       boxes=None, sample_ids=torch.arange(len(self)))

    def fingerprint(self) -> str:
        return listing_fingerprint(self.name, self.split, self.base, self.files,
                                   extra=(self.image_size, self.params.n_val, self.mean, self.std))


@DATASETS.register(summary="CIFAR-10 from the local cifar-10-batches-py pickles (download on request)",
                   masks=False, boxes=False, source="folder", params=Cifar10Params)
def cifar10(split: str, params: Cifar10Params) -> Cifar10:
    """10 classes of 32x32 photos; val is the tail of the training batches."""
    return Cifar10(split, params)
