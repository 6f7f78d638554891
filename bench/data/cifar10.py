"""``cifar10``: CIFAR-10 from the standard ``cifar-10-batches-py`` pickles in a local folder.

The pickles are read here rather than through torchvision, whose loader insists on the md5 sums
of the official files. A pickle can name any callable, so a batch file is read with a restricted
unpickler (:class:`_CifarUnpickler`) that admits only what the official files hold -- dicts,
lists, bytes, str, ints and plain numpy arrays -- and anything else is a one-line error: a
dataset folder from elsewhere never runs code. ``params.download = true`` (only when the user asks) fetches them with
``torchvision.datasets.CIFAR10(download=True)`` first.

Splits: ``train`` = the 50000 training images minus the last ``n_val``; ``val`` = those last
``n_val``; ``test`` = ``test_batch``. No masks or boxes. The whole split is held in memory as
uint8; ``tensors()`` returns it like the synthetic datasets do.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np
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


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only the globals a CIFAR pickle needs to rebuild a numpy array (the dtype, the
    array type, numpy's array reconstructor under its numpy 1 and 2 module names) and
    ``_codecs.encode`` (how protocol 2 stores bytes written by Python 3). Dicts, lists, str,
    bytes and ints need no global. Everything else -- ``os.system``, ``builtins.eval``, any
    class with a ``__reduce__`` -- is refused before it is called."""

    ALLOWED = frozenset({("numpy", "ndarray"), ("numpy", "dtype"),
                         ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                         ("_codecs", "encode")})

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 file never holds")
        return super().find_class(module, name)

    def persistent_load(self, pid):  # noqa: ANN001, ANN201
        raise pickle.UnpicklingError("it holds a persistent id, which a CIFAR-10 file never does")


def load_pickle(path: Path) -> dict:
    """A CIFAR-10 pickle as its dict, read with :class:`_CifarUnpickler`; a refused, damaged or
    non-dict file is a one-line BenchError naming it."""
    try:
        data = path.read_bytes()
        d = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except OSError as exc:
        raise BenchError(f"cannot read CIFAR-10 file {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # UnpicklingError, EOFError, a TypeError from a bad reconstruct...
        raise BenchError(f"refused CIFAR-10 file {path}: not a CIFAR-10 pickle "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(d, dict):
        raise BenchError(f"refused CIFAR-10 file {path}: holds a {type(d).__name__}, not a dict")
    return d


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One pickle -> images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` long."""
    if not path.is_file():
        raise BenchError(f"CIFAR-10 file missing: {path}")
    d = load_pickle(path)
    data, labels = d.get(b"data", d.get("data")), d.get(b"labels", d.get("labels"))
    # the shapes are checked here so that a wrong file is named, not a reshape error later
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shown = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise BenchError(f"refused CIFAR-10 file {path}: 'data' must be a uint8 array [N, 3072], got {shown}")
    if (not isinstance(labels, list) or len(labels) != len(data)
            or not all(type(v) is int and 0 <= v < 10 for v in labels)):
        raise BenchError(f"refused CIFAR-10 file {path}: 'labels' must be {len(data)} ints in 0..9")
    return (torch.as_tensor(data, dtype=torch.uint8).reshape(-1, 3, 32, 32),
            torch.as_tensor(labels, dtype=torch.long))


def read_names(base: Path) -> tuple[str, ...]:
    meta = base / "batches.meta"
    if not meta.is_file():
        return ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    names = load_pickle(meta).get(b"label_names")
    if not isinstance(names, list) or len(names) != 10 or not all(isinstance(n, (bytes, str)) for n in names):
        raise BenchError(f"refused CIFAR-10 file {meta}: 'label_names' must be a list of 10 names")
    return tuple(n.decode(errors="replace") if isinstance(n, bytes) else n for n in names)


class Cifar10:
    """A CIFAR-10 split held in memory (satisfies ``bench.data.base.ImageDataset``)."""

    name = "cifar10"
    channels = 3
    has_masks = False
    has_boxes = False
    has_step_masks = False

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
