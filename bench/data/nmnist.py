"""``nmnist``: N-MNIST (Orchard et al. 2015) from its published folder layout, binned into T frames.

Expected under ``root`` (or ``root/N-MNIST``), as the dataset's download unpacks::

    Train/<digit>/<id>.bin        60 000 recordings, digit 0..9 = the label
    Test/<digit>/<id>.bin         10 000 recordings

Each file is a list of 40-bit (5-byte) events, as the dataset's page
(garrickorchard.com/datasets/n-mnist) and G. Orchard, A. Jayawant, G. Cohen, N. Thakor,
"Converting Static Image Datasets to Spiking Neuromorphic Datasets Using Saccades", Front.
Neurosci. 9:437 (2015) state: bits 39-32 x address, 31-24 y address, bit 23 polarity
(1 ON, 0 OFF), bits 22-0 timestamp in µs; the ATIS sensor window is 34 x 34 pixels. The files
are read with ``tonic.io.read_mnist_file`` (the ``events`` extra), which also applies the
reference reader's timestamp overflow markers (y = 240: add 2^13 µs to later events).

A sample is the whole recording (its three saccades), from its first event to its last, binned
into ``steps`` frames and pooled to ``image_size`` (:mod:`bench.data._events`); the defaults
(8 steps, 32 x 32) fit the ``vgg5_*_events`` cards (``[16, 32, 32]`` inputs, 10 classes). Splits:
``train`` and ``test`` (N-MNIST publishes no validation split). Nothing is ever downloaded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.data._events import EventDataset, Events, Recording, Sensor, check_geometry, events_of, require_tonic
from bench.data._folder import check_split, resolve_root
from bench.errors import BenchError
from bench.registry import DATASETS

SENSOR_SIZE = 34
SPLIT_DIRS = {"train": "Train", "test": "Test"}
CLASS_NAMES = tuple(str(d) for d in range(10))
EVENT_BYTES = 5


@dataclasses.dataclass(frozen=True)
class NMNISTParams:
    """``root``: the folder holding ``Train/`` and ``Test/`` ("" = ``$SNNXAI_DATA/nmnist`` or
    ``~/.cache/snnxai/data/nmnist``). ``steps``: T, the time bins (the reading SNN's T).
    ``image_size``: output pixels per side, 8..34 (34 = the sensor, no pooling)."""

    root: str = ""
    steps: int = 8
    image_size: int = 32

    def __post_init__(self) -> None:
        check_geometry(self.steps, self.image_size, SENSOR_SIZE)


def read_bin(path: Path) -> Events:
    """One N-MNIST ``.bin`` file -> its events (through tonic)."""
    io = require_tonic("nmnist")
    size = path.stat().st_size
    if size % EVENT_BYTES:
        raise BenchError(f"{path}: {size} bytes is not a whole number of {EVENT_BYTES}-byte N-MNIST events; "
                         "a truncated or foreign file")
    ev = io.read_mnist_file(str(path), dtype=io.events_struct)
    return events_of(ev["x"], ev["y"], ev["t"], ev["p"])


def find_base(root: Path) -> Path:
    """The folder holding ``Train/`` or ``Test/`` (``root`` itself or ``root/N-MNIST``)."""
    for cand in (root, root / "N-MNIST"):
        if any((cand / d).is_dir() for d in SPLIT_DIRS.values()):
            return cand
    raise BenchError(f"N-MNIST not found at {root} (no Train/ or Test/ folder): download it "
                     "(https://www.garrickorchard.com/datasets/n-mnist), unzip Train.zip and Test.zip there "
                     "or pass the folder as the dataset parameter root (snnxai run: --set "
                     "data.params.root=/path/to/N-MNIST; train/explain: --data-param root=...)")


def recordings(folder: Path) -> list[Recording]:
    """The ``<digit>/*.bin`` files of a split folder, sorted by digit then file name."""
    out = []
    for label, digit in enumerate(CLASS_NAMES):
        out += [Recording(p, label) for p in sorted((folder / digit).glob("*.bin"))]
    return out


@DATASETS.register(summary="N-MNIST event recordings from a local folder, binned into T ON/OFF frames (tonic)",
                   masks=False, boxes=False, source="folder", time_varying=True,
                   classes=10, params=NMNISTParams)
def nmnist(split: str, params: NMNISTParams) -> EventDataset:
    """MNIST digits seen by a moving event camera: ``[steps * 2, S, S]`` {0, 1} event frames."""
    check_split("nmnist", split, tuple(SPLIT_DIRS))
    require_tonic("nmnist")  # fail before listing 60 000 files
    base = find_base(resolve_root("nmnist", params.root))
    folder = base / SPLIT_DIRS[split]
    if not folder.is_dir():
        raise BenchError(f"N-MNIST at {base} has no {SPLIT_DIRS[split]}/ folder for split {split!r}")
    recs = recordings(folder)
    if not recs:
        raise BenchError(f"N-MNIST folder {folder} has no <digit>/*.bin recordings")
    empty = [r.path for r in recs if r.path.stat().st_size == 0]
    if empty:  # refused before a run starts: an empty recording would score as an all-zero sample
        more = f" (and {len(empty) - 1} more)" if len(empty) > 1 else ""
        raise BenchError(f"N-MNIST recording {empty[0]} is empty (0 bytes){more}; remove it from the folder "
                         "or restore it")
    return EventDataset("nmnist", split, params, base, Sensor(SENSOR_SIZE, SENSOR_SIZE, read_bin), recs,
                        CLASS_NAMES)
