"""Event-camera folder datasets (``nmnist``, ``dvs_gesture``), loaded for real from tiny files
written here in the published binary formats: N-MNIST's 5-byte events (Orchard et al. 2015)
and DVS128 Gesture's AEDAT 3.1 packets with labels CSVs and trial lists (Amir et al. 2017).
The writers below follow the format descriptions, not the readers under test."""

from __future__ import annotations

import importlib.util
import shutil
import struct
import sys
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.data import get_dataset
from bench.data.base import load_batch
from bench.errors import BenchError
from bench.pipeline.plan import metric_skip_reason
from bench.registry import DATASETS, METRICS

#: nmnist reads through tonic (the events extra); dvs_gesture and the install message need no tonic
needs_tonic = pytest.mark.skipif(importlib.util.find_spec("tonic") is None, reason="tonic is not installed")


def build(name: str, split: str, **params):
    entry = DATASETS.get(name)
    return entry.obj(split, entry.make_params(params))


def frames(steps: int, size: int, *on: tuple[int, int, int, int]) -> torch.Tensor:
    """``[steps * 2, size, size]`` zeros with a 1 at each ``(step, polarity, row, col)``
    (polarity 1 = ON = channel 2 step, 0 = OFF = channel 2 step + 1)."""
    out = torch.zeros(steps * 2, size, size)
    for step, pol, row, col in on:
        out[2 * step + (1 - pol), row, col] = 1
    return out


# -- N-MNIST ----------------------------------------------------------------------------------

def nmnist_bytes(*events: tuple[int, int, int, int]) -> bytes:
    """Events ``(x, y, p, t)`` as 40-bit records: x (8 bits), y (8), p (1), t (23, µs), big-endian."""
    out = b""
    for x, y, p, t in events:
        word = x << 32 | y << 24 | p << 23 | t
        out += word.to_bytes(5, "big")
    return out


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


#: Train/3/00001.bin: window [100, 500) µs, 4 bins of 100 µs
SAMPLE_A = [(5, 7, 1, 100), (5, 7, 1, 150), (33, 0, 0, 299), (0, 33, 0, 300), (10, 20, 1, 499)]
#: Train/3/00002.bin: a 23-bit timestamp (all three of its bytes in use), 2 events
SAMPLE_B = [(1, 2, 0, 0x5A1B2C), (3, 4, 1, 0x5A1B2C + 800)]


@pytest.fixture
def nmnist_root(tmp_path):
    root = tmp_path / "N-MNIST"
    write(root / "Train" / "3" / "00001.bin", nmnist_bytes(*SAMPLE_A))
    write(root / "Train" / "3" / "00002.bin", nmnist_bytes(*SAMPLE_B))
    write(root / "Train" / "0" / "00007.bin", nmnist_bytes((2, 2, 1, 10)))
    write(root / "Test" / "9" / "00004.bin", nmnist_bytes((30, 31, 0, 5), (31, 30, 1, 6)))
    return tmp_path


@needs_tonic
def test_nmnist_bins_known_events_at_native_size(nmnist_root):
    ds = build("nmnist", "train", root=str(nmnist_root), steps=4, image_size=34)
    assert (len(ds), ds.channels, ds.image_size, ds.steps, ds.num_classes) == (3, 8, 34, 4, 10)
    assert ds.class_names == tuple("0123456789") and ds.has_masks is False and ds.has_boxes is False
    # sorted by digit then file: 0/00007, 3/00001, 3/00002; ids are those positions
    assert [ds[i].label for i in range(3)] == [0, 3, 3]
    assert [ds[i].sample_id for i in range(3)] == [0, 1, 2]
    s = ds[1]
    # (t - 100) * 4 // 400: 100, 150 -> 0; 299 -> 1; 300 -> 2; 499 (the last event) -> 3
    want = frames(4, 34, (0, 1, 7, 5), (1, 0, 0, 33), (2, 0, 33, 0), (3, 1, 20, 10))
    assert torch.equal(s.image, want)
    assert s.image.dtype == torch.float32 and s.mask is None and s.box is None


@needs_tonic
def test_nmnist_reads_23_bit_timestamps_and_clips_counts(nmnist_root):
    ds = build("nmnist", "train", root=str(nmnist_root), steps=2, image_size=34)
    # window [t0, t0 + 801): 0 -> step 0, 800 -> step 1
    assert torch.equal(ds[2].image, frames(2, 34, (0, 0, 2, 1), (1, 1, 4, 3)))
    # two ON events on one pixel in one bin give 1, not 2
    assert ds[1].image.max() == 1 and ds[1].image.sum() == 4


@needs_tonic
def test_nmnist_pools_to_image_size(nmnist_root):
    ds = build("nmnist", "train", root=str(nmnist_root), steps=4, image_size=32)
    # (x, y) -> (x * 32 // 34, y * 32 // 34): (5, 7) -> (4, 6); (33, 0) -> (31, 0); (0, 33) -> (0, 31); (10, 20) -> (9, 18)
    want = frames(4, 32, (0, 1, 6, 4), (1, 0, 0, 31), (2, 0, 31, 0), (3, 1, 18, 9))
    assert torch.equal(ds[1].image, want)


@needs_tonic
def test_nmnist_test_split_and_registry_lookup(nmnist_root):
    ds = get_dataset("nmnist", "test", {"root": str(nmnist_root / "N-MNIST")})  # the base folder itself
    assert (len(ds), ds[0].label, ds.channels, ds.image_size) == (1, 9, 16, 32)  # defaults: 8 steps, 32 px
    # window [5, 7), 8 bins of 0.25 µs: t = 5 -> step 0, t = 6 -> step (6 - 5) * 8 // 2 = 4
    assert torch.equal(ds[0].image, frames(8, 32, (0, 0, 29, 28), (4, 1, 28, 29)))
    b = load_batch(ds, [0])  # mean 0 / std 1: the model input is the event tensor itself
    assert torch.equal(b.x[0], ds[0].image) and b.mask is None
    assert DATASETS.get("nmnist").spec.source == "folder"


@needs_tonic
def test_nmnist_fingerprint_follows_the_listing_not_the_location(nmnist_root, tmp_path):
    fp = build("nmnist", "train", root=str(nmnist_root)).fingerprint()
    moved = tmp_path / "elsewhere"
    shutil.copytree(nmnist_root / "N-MNIST", moved)
    assert build("nmnist", "train", root=str(moved)).fingerprint() == fp
    assert build("nmnist", "train", root=str(moved), steps=4).fingerprint() != fp
    write(moved / "Train" / "5" / "00009.bin", nmnist_bytes((1, 1, 1, 1)))
    assert build("nmnist", "train", root=str(moved)).fingerprint() != fp


@needs_tonic
def test_nmnist_errors(nmnist_root, tmp_path, monkeypatch):
    with pytest.raises(BenchError, match="N-MNIST not found at .*unzip Train.zip"):
        build("nmnist", "train", root=str(tmp_path / "missing"))
    with pytest.raises(BenchError, match=r"unknown split 'val' \(choose from train, test\)"):
        build("nmnist", "val", root=str(nmnist_root))
    with pytest.raises(BenchError, match="image_size must be in 8..34"):
        build("nmnist", "train", root=str(nmnist_root), image_size=64)
    with pytest.raises(BenchError, match="steps must be in 1..256"):
        build("nmnist", "train", root=str(nmnist_root), steps=0)
    empty = tmp_path / "empty"
    (empty / "Train" / "1").mkdir(parents=True)
    with pytest.raises(BenchError, match="has no <digit>/\\*.bin recordings"):
        build("nmnist", "train", root=str(empty))
    with pytest.raises(BenchError, match="has no Test/ folder"):
        build("nmnist", "test", root=str(empty))
    bad = tmp_path / "bad"
    write(bad / "Train" / "1" / "00001.bin", nmnist_bytes((1, 1, 1, 1)) + b"\x00\x01")
    write(bad / "Train" / "2" / "00002.bin", nmnist_bytes((40, 1, 1, 1)))
    ds = build("nmnist", "train", root=str(bad))
    with pytest.raises(BenchError, match="7 bytes is not a whole number of 5-byte N-MNIST events"):
        ds[0]
    with pytest.raises(BenchError, match=r"event \(x=40, y=1, p=1\) is not on the 34x34 sensor"):
        ds[1]


def test_nmnist_without_tonic_says_how_to_install(nmnist_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "tonic", None)  # `import tonic` now raises ImportError
    monkeypatch.setitem(sys.modules, "tonic.io", None)
    with pytest.raises(BenchError, match=r"install the events extra: pip install 'snn-xai-bench\[events\]'"):
        build("nmnist", "train", root=str(nmnist_root))


def test_a_missing_folder_exits_2_with_one_line(tmp_path, capsys):
    code = main(["train", "vgg5_snn_t8_events", "--data", "dvs_gesture", "--data-param", f"root={tmp_path / 'none'}",
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: DVS128 Gesture not found at ") and err.count("\n") == 1


@needs_tonic
def test_metrics_needing_masks_are_skipped_with_a_reason(nmnist_root):
    ds = build("nmnist", "test", root=str(nmnist_root))
    assert metric_skip_reason(METRICS.get("pointing_game"), ds, "nmnist") == "dataset 'nmnist' has no object masks"
    assert "no per-step masks" in metric_skip_reason(METRICS.get("step_pointing_game"), ds, "nmnist")
    assert metric_skip_reason(METRICS.get("deletion"), ds, "nmnist") is None


# -- DVS128 Gesture ---------------------------------------------------------------------------

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01 00:00:00\r\n#!END-HEADER\r\n"


def packet(etype: int, events: list[tuple[int, int]], overflow: int = 0, spare: int = 0) -> bytes:
    """A packet: the 28-byte header, then ``len(events) + spare`` slots of 8 bytes (uint32 data,
    int32 timestamp); the ``spare`` slots are unused capacity (eventNumber counts the events)."""
    n = len(events)
    head = struct.pack("<hhiiiiii", etype, 1, 8, 4, overflow, n + spare, n, n)
    body = b"".join(struct.pack("<Ii", d, t) for d, t in events)
    return head + body + struct.pack("<Ii", polarity(1, 1, 1), 0) * spare


def polarity(x: int, y: int, p: int, valid: int = 1) -> int:
    """A polarity event's data word: bits 17-31 x, 2-16 y, bit 1 polarity, bit 0 valid mark."""
    return x << 17 | y << 2 | p << 1 | valid


def gesture_file(path: Path) -> None:
    path.write_bytes(HEADER + b"".join([
        packet(0, [(0xFFFFFFFF, 1500)]),  # a special event packet: skipped
        packet(1, [(polarity(4, 9, 1), 1000), (polarity(100, 120, 0), 1499),
                   (polarity(7, 7, 1, valid=0), 1200)], spare=1),  # an invalid event, an unused slot
        packet(1, [(polarity(127, 0, 1), 1500), (polarity(5, 11, 0), 1999), (polarity(64, 64, 1), 2000)]),
        packet(1, [(polarity(3, 3, 0), 100)], overflow=1),  # t = 2^31 + 100
    ]))


@pytest.fixture
def gesture_root(tmp_path):
    base = tmp_path / "DvsGesture"
    base.mkdir()
    gesture_file(base / "user01_fluorescent.aedat")
    (base / "user01_fluorescent_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n1,1000,2000\n11,1500,2500\n5,2147483600,2147483700\n")
    gesture_file(base / "user24_led.aedat")
    (base / "user24_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n3,1000,3000\n")
    (base / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (base / "trials_to_test.txt").write_text("user24_led.aedat\n\n")
    return tmp_path


def test_gesture_windows_labels_and_bins(gesture_root):
    ds = build("dvs_gesture", "train", root=str(gesture_root), steps=2, image_size=128)
    assert (len(ds), ds.num_classes, ds.channels) == (3, 11, 4)
    assert [ds[i].label for i in range(3)] == [0, 10, 4] and ds.class_names[10] == "other_gestures"
    # [1000, 2000): 2 bins of 500 µs; the invalid event and the unused slot leave no trace
    assert torch.equal(ds[0].image, frames(2, 128, (0, 1, 9, 4), (0, 0, 120, 100), (1, 1, 0, 127), (1, 0, 11, 5)))
    # [1500, 2500): 1500, 1999 -> bin 0; 2000 -> bin 1
    assert torch.equal(ds[1].image, frames(2, 128, (0, 1, 0, 127), (0, 0, 11, 5), (1, 1, 64, 64)))
    # [2^31 - 48, 2^31 + 52): the overflow packet's event at 2^31 + 100 is outside; nothing else there
    assert ds[2].image.sum() == 0


def test_gesture_overflow_timestamps(gesture_root):
    base = gesture_root / "DvsGesture"
    (base / "user01_fluorescent_labels.csv").write_text("class,startTime_usec,endTime_usec\n2,2147483648,2147483848\n")
    ds = build("dvs_gesture", "train", root=str(base), steps=2, image_size=128)
    assert torch.equal(ds[0].image, frames(2, 128, (1, 0, 3, 3)))  # 2^31 + 100: the second bin


def test_gesture_pools_4x4_and_test_split(gesture_root):
    ds = build("dvs_gesture", "test", root=str(gesture_root))  # defaults: 8 steps, 32 px
    assert (len(ds), ds[0].label, ds.channels, ds.image_size) == (1, 2, 16, 32)
    # [1000, 3000), 8 bins of 250 µs; (x, y) -> (x // 4, y // 4)
    want = frames(8, 32, (0, 1, 2, 1), (1, 0, 30, 25), (2, 1, 0, 31), (3, 0, 2, 1), (4, 1, 16, 16))
    assert torch.equal(ds[0].image, want)


def test_gesture_fingerprint_covers_the_labels(gesture_root):
    fp = build("dvs_gesture", "train", root=str(gesture_root)).fingerprint()
    assert build("dvs_gesture", "train", root=str(gesture_root)).fingerprint() == fp
    labels = gesture_root / "DvsGesture" / "user01_fluorescent_labels.csv"
    labels.write_text(labels.read_text() + "2,1000,1100\n")
    assert build("dvs_gesture", "train", root=str(gesture_root)).fingerprint() != fp


def test_gesture_errors(gesture_root, tmp_path):
    base = gesture_root / "DvsGesture"
    with pytest.raises(BenchError, match="DVS128 Gesture not found at .*DvsGesture.tar.gz"):
        build("dvs_gesture", "train", root=str(tmp_path / "missing"))
    (base / "trials_to_test.txt").write_text("user24_led.aedat\nuser25_lab.aedat\n")
    with pytest.raises(BenchError, match="lists user25_lab.aedat but .*user25_lab.aedat is missing"):
        build("dvs_gesture", "test", root=str(base))
    (base / "user01_fluorescent_labels.csv").write_text("class,startTime_usec,endTime_usec\n12,1,2\n")
    with pytest.raises(BenchError, match=r"user01_fluorescent_labels.csv:2: need class in 1..11"):
        build("dvs_gesture", "train", root=str(base))
    (base / "user01_fluorescent_labels.csv").write_text("label,start\n1,2\n")
    with pytest.raises(BenchError, match="expected the columns class,startTime_usec,endTime_usec"):
        build("dvs_gesture", "train", root=str(base))
    (base / "user01_fluorescent_labels.csv").write_text("class,startTime_usec,endTime_usec\n1,1000,2000\n")
    ds = build("dvs_gesture", "train", root=str(base))
    aedat = base / "user01_fluorescent.aedat"
    aedat.write_bytes(b"#!AER-DAT2.0\r\n#!END-HEADER\r\n" + b"\x00" * 16)
    with pytest.raises(BenchError, match="not an AEDAT 3.x file"):
        build("dvs_gesture", "train", root=str(base))[0]
    aedat.write_bytes(HEADER + packet(1, [(polarity(1, 1, 1), 1000)] * 3)[:-5])
    with pytest.raises(BenchError, match="bad or truncated packet at byte"):
        build("dvs_gesture", "train", root=str(base))[0]
    aedat.write_bytes(HEADER + packet(1, [(polarity(200, 1, 1), 1000)]))
    with pytest.raises(BenchError, match=r"event \(x=200, y=1, p=1\) is not on the 128x128 sensor"):
        build("dvs_gesture", "train", root=str(base))[0]
    assert len(ds) == 1


def test_gesture_reads_a_trial_once_for_its_gestures(gesture_root, monkeypatch):
    ds = build("dvs_gesture", "train", root=str(gesture_root), steps=2)
    calls = []
    read = ds.sensor.read
    monkeypatch.setattr(ds, "sensor", type(ds.sensor)(128, 128, lambda p: calls.append(p) or read(p)))
    for i in range(len(ds)):
        ds[i]
    assert len(calls) == 1
