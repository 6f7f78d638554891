"""Folder datasets, loaded for real from tiny fake copies written into tmp_path:
CIFAR-10 pickles, a Tiny-ImageNet tree with box files, an image folder with a boxes CSV."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from bench.errors import BenchError
from bench.registry import DATASETS


def build(name: str, split: str, **params):
    entry = DATASETS.get(name)
    return entry.obj(split, entry.make_params(params))


def expected_mask(size: int, x0: float, y0: float, x1: float, y1: float) -> torch.Tensor:
    """Pixel (row, col) is in the box when its centre is: written out loop by loop."""
    m = torch.zeros(size, size, dtype=torch.bool)
    for row in range(size):
        for col in range(size):
            m[row, col] = x0 <= col + 0.5 < x1 and y0 <= row + 0.5 < y1
    return m


def save(path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def solid(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (h, w, 3)).copy()


# -- CIFAR-10 ---------------------------------------------------------------------------------

@pytest.fixture
def cifar_root(tmp_path):
    rng = np.random.default_rng(0)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    batches = {}
    for name, n in [*((f"data_batch_{i}", 4) for i in range(1, 6)), ("test_batch", 3)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        batches[name] = (data, labels)
        with open(base / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels}, fh)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names}, fh)
    return tmp_path, batches


def test_cifar10_reads_the_pickles(cifar_root):
    root, batches = cifar_root
    train = build("cifar10", "train", root=str(root), n_val=4)
    val = build("cifar10", "val", root=str(root), n_val=4)
    test = build("cifar10", "test", root=str(root / "cifar-10-batches-py"))
    assert (len(train), len(val), len(test)) == (16, 4, 3)
    assert train.class_names[3] == "cat" and train.num_classes == 10
    data, labels = batches["data_batch_2"]
    s = train[5]  # second image of batch 2
    want = torch.from_numpy(data[1].reshape(3, 32, 32)).float() / 255
    assert torch.equal(s.image, want) and s.label == labels[1] and s.sample_id == 5
    assert s.mask is None and s.box is None and not train.has_masks and not train.has_boxes
    data5, labels5 = batches["data_batch_5"]
    assert torch.equal(val[0].image, torch.from_numpy(data5[0].reshape(3, 32, 32)).float() / 255)
    assert val.tensors().labels.tolist() == labels5
    assert test[2].label == batches["test_batch"][1][2]
    assert train.mean == (0.4914, 0.4822, 0.4465)
    t = build("cifar10", "train", root=str(root), n_val=4, image_size=16).tensors()
    assert t.images.shape == (16, 3, 16, 16) and 0 <= t.images.min() and t.images.max() <= 1
    assert train.fingerprint() != val.fingerprint() != test.fingerprint()


def test_cifar10_missing_folder_says_where(tmp_path):
    with pytest.raises(BenchError, match=f"CIFAR-10 not found at {tmp_path / 'nope'}.*download=true"):
        build("cifar10", "train", root=str(tmp_path / "nope"))


def test_default_root_from_environment(cifar_root, monkeypatch):
    root, _ = cifar_root
    (root / "cifar10").mkdir()
    (root / "cifar-10-batches-py").rename(root / "cifar10" / "cifar-10-batches-py")
    monkeypatch.setenv("SNNXAI_DATA", str(root))
    assert len(build("cifar10", "test")) == 3


# -- Tiny-ImageNet ----------------------------------------------------------------------------

WNIDS = ["n01443537", "n01629819"]
COLOURS = [(200, 30, 30), (30, 30, 200)]


@pytest.fixture
def tiny_root(tmp_path):
    base = tmp_path / "tiny-imagenet-200"
    base.mkdir()
    (base / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (base / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n"
                                    "n99999999\tunused\n")
    for k, wnid in enumerate(WNIDS):
        lines = []
        for j in range(2):
            save(base / "train" / wnid / "images" / f"{wnid}_{j}.JPEG", solid(64, 64, COLOURS[k]))
            lines.append(f"{wnid}_{j}.JPEG\t{5 + j}\t10\t20\t40")  # inclusive, non-square
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("\n".join(lines) + "\n")
    ann = []
    for j, k in enumerate([1, 0, 1]):
        save(base / "val" / "images" / f"val_{j}.JPEG", solid(64, 64, COLOURS[k]))
        ann.append(f"val_{j}.JPEG\t{WNIDS[k]}\t0\t{j}\t63\t30")
    (base / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    return tmp_path


def test_tinyimagenet_train_labels_and_boxes(tiny_root):
    ds = build("tinyimagenet", "train", root=str(tiny_root))
    assert len(ds) == 4 and ds.class_names == ("goldfish", "European fire salamander")
    assert ds.has_boxes and not ds.has_masks and ds.image_size == 64
    s = ds[2]  # first image of the second class
    assert s.label == 1 and s.image.shape == (3, 64, 64)
    assert torch.allclose(s.image.mean((1, 2)), torch.tensor(COLOURS[1]) / 255, atol=0.03)
    # inclusive (5, 10, 20, 40) -> half-open (5, 10, 21, 41)
    assert s.box.tolist() == [5, 10, 21, 41]
    assert torch.equal(s.mask, expected_mask(64, 5, 10, 21, 41))
    assert ds[1].box.tolist() == [6, 10, 21, 41]


def test_tinyimagenet_resized_box_pixel_by_pixel(tiny_root):
    ds = build("tinyimagenet", "train", root=str(tiny_root / "tiny-imagenet-200"), image_size=32)
    s = ds[0]
    assert s.image.shape == (3, 32, 32)
    assert s.box.tolist() == [2.5, 5.0, 10.5, 20.5]
    want = expected_mask(32, 2.5, 5.0, 10.5, 20.5)
    assert torch.equal(s.mask, want)
    assert want.sum() == 8 * 15  # columns 2..9, rows 5..19


def test_tinyimagenet_val_and_test_read_val_annotations(tiny_root):
    val = build("tinyimagenet", "val", root=str(tiny_root))
    test = build("tinyimagenet", "test", root=str(tiny_root))
    assert len(val) == len(test) == 3
    assert [val[i].label for i in range(3)] == [1, 0, 1]
    assert val[2].box.tolist() == [0, 2, 64, 31]
    assert torch.equal(test[1].image, val[1].image)
    assert val.fingerprint() != build("tinyimagenet", "train", root=str(tiny_root)).fingerprint()


def test_tinyimagenet_missing_folder_says_where(tmp_path):
    where = tmp_path / "absent"
    with pytest.raises(BenchError, match=f"Tiny-ImageNet not found at {where}.*data.params.root") as err:
        build("tinyimagenet", "val", root=str(where))
    assert "\n" not in str(err.value)


# -- image folder -----------------------------------------------------------------------------

@pytest.fixture
def folder_root(tmp_path):
    root = tmp_path / "imgs"
    pattern = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    save(root / "cat" / "a.png", pattern)
    save(root / "cat" / "b.PNG", solid(32, 32, (0, 0, 0)))
    save(root / "dog" / "c.jpg", solid(20, 40, (250, 250, 250)))  # 40 wide, 20 high
    save(root / "dog" / "d.jpeg", solid(32, 32, (90, 90, 90)))
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "boxes.csv").write_text("filename,x0,y0,x1,y1\ncat/a.png,3,4,10,30\ndog/c.jpg,5,2,25,12\n")
    return root


def test_imagefolder_hash_split_partitions_the_files(folder_root):
    parts = {}
    for split in ("train", "val", "test"):
        try:
            ds = build("imagefolder", split, root=str(folder_root), image_size=32,
                       val_fraction=0.3, test_fraction=0.3)
            parts[split] = {it.path.name for it in ds.items}
        except BenchError as exc:  # a split may be empty with four files
            assert "no" in str(exc)
            parts[split] = set()
    names = [n for p in parts.values() for n in p]
    assert sorted(names) == ["a.png", "b.PNG", "c.jpg", "d.jpeg"]


def test_imagefolder_labels_pixels_and_boxes(folder_root):
    ds = build("imagefolder", "train", root=str(folder_root), image_size=32,
               val_fraction=0.0, test_fraction=0.0)
    assert ds.class_names == ("cat", "dog") and len(ds) == 4 and ds.has_boxes
    by_name = {it.path.name: i for i, it in enumerate(ds.items)}
    a = ds[by_name["a.png"]]
    pattern = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    assert a.label == 0 and torch.equal(a.image, torch.from_numpy(pattern).permute(2, 0, 1).float() / 255)
    assert a.box.tolist() == [3, 4, 10, 30] and torch.equal(a.mask, expected_mask(32, 3, 4, 10, 30))
    # a 40x20 image squashed to 32x32: x scales by 0.8, y by 1.6
    c = ds[by_name["c.jpg"]]
    assert c.label == 1 and c.image.shape == (3, 32, 32)
    assert torch.allclose(c.box, torch.tensor([4.0, 3.2, 20.0, 19.2]))
    assert torch.equal(c.mask, expected_mask(32, 4.0, 3.2, 20.0, 19.2))
    assert ds[by_name["b.PNG"]].box is None and ds[by_name["b.PNG"]].mask is None


def test_imagefolder_split_folders(tmp_path):
    root = tmp_path / "split"
    save(root / "train" / "ant" / "1.png", solid(16, 16, (1, 2, 3)))
    save(root / "train" / "bee" / "2.png", solid(16, 16, (1, 2, 3)))
    save(root / "test" / "bee" / "3.png", solid(16, 16, (1, 2, 3)))
    test = build("imagefolder", "test", root=str(root), image_size=16)
    assert test.class_names == ("ant", "bee") and len(test) == 1 and test[0].label == 1
    assert not test.has_boxes and test[0].box is None
    with pytest.raises(BenchError, match="no val images"):
        build("imagefolder", "val", root=str(root))


def test_imagefolder_errors(tmp_path, folder_root):
    with pytest.raises(BenchError, match=f"image folder not found at {tmp_path / 'x'}"):
        build("imagefolder", "train", root=str(tmp_path / "x"))
    bad = tmp_path / "bad.csv"
    bad.write_text("file,x0,y0,x1,y1\n")
    with pytest.raises(BenchError, match="filename,x0,y0,x1,y1"):
        build("imagefolder", "train", root=str(folder_root), boxes=str(bad))
    with pytest.raises(BenchError, match="boxes CSV not found"):
        build("imagefolder", "train", root=str(folder_root), boxes=str(tmp_path / "none.csv"))
    with pytest.raises(BenchError, match="unknown split"):
        build("imagefolder", "dev", root=str(folder_root))


def test_folder_datasets_registered():
    for name, boxes in (("cifar10", False), ("tinyimagenet", True), ("imagefolder", True)):
        meta = dataclasses.asdict(DATASETS.get(name).spec)
        assert meta["source"] == "folder" and meta["boxes"] is boxes and meta["masks"] is False
