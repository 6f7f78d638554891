"""``dvs_gesture``: DVS128 Gesture (Amir et al. 2017) from its published folder layout, binned into T frames.

Expected under ``root`` (or ``root/DvsGesture``), as ``DvsGesture.tar.gz`` unpacks::

    trials_to_train.txt               one trial file name a line (user01_fluorescent.aedat ...)
    trials_to_test.txt
    user<NN>_<lighting>.aedat         the trial's events, AEDAT 3.1
    user<NN>_<lighting>_labels.csv    header "class,startTime_usec,endTime_usec", one gesture a row

Facts from the dataset's README.txt (A. Amir et al., "A Low Power, Fully Event-Based Gesture
Recognition System", CVPR 2017): 11 gestures, 29 subjects, 3 illumination conditions,
recorded with a DVS128 (128 x 128 pixels); ``class`` is 1..11 (the order of :data:`CLASS_NAMES`,
as gesture_mapping.csv lists them); a gesture is the events with
``startTime_usec <= t < endTime_usec`` of its trial. Every row of a labels file is one sample.

AEDAT 3.1 (the README and libcaer's ``events/common.h`` / ``events/polarity.h``): ASCII header
lines starting with ``#`` up to ``#!END-HEADER``, then packets, all little-endian: a 28-byte header
(int16 eventType, int16 eventSource, int32 eventSize, eventTSOffset, eventTSOverflow,
eventCapacity, eventNumber, eventValid) followed by eventCapacity slots of eventSize bytes, of
which the first eventNumber hold events. A polarity event (eventType 1) is 8 bytes: uint32 data
(bit 0 valid mark, bit 1 polarity, bits 2-16 y, bits 17-31 x) and int32 timestamp (µs), whose
64-bit time is ``eventTSOverflow << 31 | timestamp``. This module reads that itself (numpy):
tonic 1.7's ``read_dvs_ibm`` fails on its own header reader's return value, and its packet reader
ignores the event type and the valid mark. Other packet types are skipped; invalid events dropped.

A sample is one labelled gesture binned into ``steps`` frames over its window and pooled to
``image_size`` (:mod:`bench.data._events`; 32 pools 4 x 4 sensor pixels). Splits: ``train``
and ``test`` (the two trial lists; no validation split is published). Nothing is ever downloaded.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from bench.data._events import EventDataset, Events, Recording, Sensor, check_geometry, events_of
from bench.data._folder import check_split, resolve_root
from bench.errors import BenchError
from bench.registry import DATASETS

SENSOR_SIZE = 128
SPLIT_FILES = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
CLASS_NAMES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
               "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
               "arm_roll", "air_drums", "air_guitar", "other_gestures")
LABEL_COLUMNS = ("class", "startTime_usec", "endTime_usec")

PACKET_HEADER = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                          ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
POLARITY_EVENT = np.dtype([("data", "<u4"), ("timestamp", "<i4")])
POLARITY_TYPE = 1


@dataclasses.dataclass(frozen=True)
class DVSGestureParams:
    """``root``: the ``DvsGesture`` folder ("" = ``$SNNXAI_DATA/dvs_gesture`` or
    ``~/.cache/snnxai/data/dvs_gesture``). ``steps``: T, the time bins of a gesture's window.
    ``image_size``: output pixels per side, 8..128 (128 = the sensor, no pooling)."""

    root: str = ""
    steps: int = 8
    image_size: int = 32

    def __post_init__(self) -> None:
        check_geometry(self.steps, self.image_size, SENSOR_SIZE)


def header_end(data: bytes, path: Path) -> int:
    """Offset of the first packet: after the ``#`` header lines of an AEDAT 3.x file."""
    if not data.startswith(b"#!AER-DAT3"):
        version = data[:16].split(b"\n")[0].decode("ascii", "replace").strip()
        raise BenchError(f"{path}: not an AEDAT 3.x file (first line {version!r}); DVS128 Gesture trials are AEDAT 3.1")
    pos = 0
    while data.startswith(b"#", pos):
        end = data.find(b"\n", pos)
        if end < 0:
            break
        line, pos = data[pos:end], end + 1
        if line.startswith(b"#!END-HEADER"):
            return pos
    raise BenchError(f"{path}: AEDAT header has no #!END-HEADER line")


def read_aedat31(path: Path) -> Events:
    """The valid polarity events of an AEDAT 3.1 file, in file order (see the module doc)."""
    data = path.read_bytes()
    pos = header_end(data, path)
    parts = []
    while pos < len(data):
        if pos + PACKET_HEADER.itemsize > len(data):
            raise BenchError(f"{path}: truncated (a partial packet header at byte {pos})")
        head = np.frombuffer(data, PACKET_HEADER, count=1, offset=pos)[0]
        body = pos + PACKET_HEADER.itemsize
        size, capacity, number = int(head["size"]), int(head["capacity"]), int(head["number"])
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity or body + capacity * size > len(data):
            raise BenchError(f"{path}: bad or truncated packet at byte {pos} (eventSize {size}, "
                             f"capacity {capacity}, number {number})")
        if int(head["type"]) == POLARITY_TYPE:
            if size != POLARITY_EVENT.itemsize:
                raise BenchError(f"{path}: polarity events of {size} bytes at byte {pos} (AEDAT 3.1 has 8)")
            ev = np.frombuffer(data, POLARITY_EVENT, count=number, offset=body)
            ev = ev[(ev["data"] & 1) == 1]  # the valid mark
            t = (np.int64(int(head["ts_overflow"])) << 31) | ev["timestamp"].astype(np.int64)
            parts.append((ev["data"] >> 17 & 0x7FFF, ev["data"] >> 2 & 0x7FFF, t, ev["data"] >> 1 & 1))
        pos = body + capacity * size
    if not parts:
        return events_of(*(np.zeros(0, np.int64) for _ in range(4)))
    return events_of(*(np.concatenate(col) for col in zip(*parts)))


def find_base(root: Path) -> Path:
    """The folder holding the trial lists (``root`` itself or ``root/DvsGesture``)."""
    for cand in (root, root / "DvsGesture"):
        if any((cand / f).is_file() for f in SPLIT_FILES.values()):
            return cand
    raise BenchError(f"DVS128 Gesture not found at {root} (no trials_to_train.txt / trials_to_test.txt): "
                     "download DvsGesture.tar.gz (https://research.ibm.com/dvsgesture/), unpack it there "
                     "or pass the DvsGesture folder as the dataset parameter root (snnxai run: --set "
                     "data.params.root=/path/to/DvsGesture; train/explain: --data-param root=...)")


def trials(base: Path, split: str) -> list[str]:
    """The trial names (``user01_fluorescent``) listed for ``split``, sorted, each present with its labels."""
    listing = base / SPLIT_FILES[split]
    if not listing.is_file():
        raise BenchError(f"DVS128 Gesture at {base} has no {listing.name} for split {split!r}")
    names = sorted({Path(line.strip()).stem for line in listing.read_text().splitlines() if line.strip()})
    for name in names:
        for need in (base / f"{name}.aedat", base / f"{name}_labels.csv"):
            if not need.is_file():
                raise BenchError(f"{listing.name} lists {name}.aedat but {need} is missing")
    return names


def gestures(labels: Path, aedat: Path) -> list[Recording]:
    """One :class:`Recording` per row of a trial's labels CSV (class 1..11 -> label 0..10)."""
    with open(labels, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or any(c not in reader.fieldnames for c in LABEL_COLUMNS):
            raise BenchError(f"{labels}: expected the columns {','.join(LABEL_COLUMNS)}, "
                             f"found {','.join(reader.fieldnames or [])}")
        out = []
        for n, row in enumerate(reader, start=2):
            try:
                cls, t0, t1 = (int(row[c]) for c in LABEL_COLUMNS)
            except (TypeError, ValueError):
                raise BenchError(f"{labels}:{n}: bad row {row}") from None
            if not 1 <= cls <= len(CLASS_NAMES) or t1 <= t0:
                raise BenchError(f"{labels}:{n}: need class in 1..{len(CLASS_NAMES)} and endTime_usec > "
                                 f"startTime_usec, got {cls},{t0},{t1}")
            out.append(Recording(aedat, cls - 1, (t0, t1)))
    return out


@DATASETS.register(summary="DVS128 Gesture trials from a local folder, one sample per labelled gesture, T ON/OFF frames",
                   masks=False, boxes=False, source="folder",
                   time_varying=True, params=DVSGestureParams)
def dvs_gesture(split: str, params: DVSGestureParams) -> EventDataset:
    """11 hand and arm gestures seen by a DVS128: ``[steps * 2, S, S]`` {0, 1} event frames."""
    check_split("dvs_gesture", split, tuple(SPLIT_FILES))
    base = find_base(resolve_root("dvs_gesture", params.root))
    recs, notes = [], [base / SPLIT_FILES[split]]
    for name in trials(base, split):
        labels = base / f"{name}_labels.csv"
        recs += gestures(labels, base / f"{name}.aedat")
        notes.append(labels)
    if not recs:
        raise BenchError(f"DVS128 Gesture at {base} has no labelled {split} gestures")
    return EventDataset("dvs_gesture", split, params, base, Sensor(SENSOR_SIZE, SENSOR_SIZE, read_aedat31),
                        recs, CLASS_NAMES, annotations=notes)
