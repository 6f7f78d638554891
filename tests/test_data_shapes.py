"""The embedded synthetic datasets ``shapes`` and ``shapes_pair``: determinism, exact masks,
boxes, balance, distractors, the pair layout and the normalization constants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.path import Path

from bench.data import _render, get_dataset
from bench.data.base import box_to_mask, load_batch
from bench.data.pair import PAIR_MEAN, PAIR_STD
from bench.data.shapes import SHAPES_MEAN, SHAPES_STD
from bench.errors import BenchError
from bench.registry import DATASETS

SMALL = {"n_train": 300, "n_val": 40, "n_test": 40}


def fresh(name: str, split: str, **params):
    """A new (not memoized) dataset instance, so determinism is tested across instances."""
    entry = DATASETS.get(name)
    return entry.obj(split, entry.make_params({**SMALL, **params}))


@pytest.fixture(scope="module")
def train():
    return fresh("shapes", "train")


@pytest.fixture(scope="module")
def pair():
    return fresh("shapes_pair", "val")


def tight_box(mask: torch.Tensor) -> list[float]:
    rows, cols = mask.nonzero(as_tuple=True)
    return [cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]


# -- rasterizer: known answers ------------------------------------------------------------------

def test_disk_mask_is_pixel_centres_inside_the_circle():
    place = torch.tensor([[12.3, 15.8, 10.0, 0.7]])
    mask = _render.target_masks(torch.tensor([0]), place, 32)[0]
    rr, cc = np.mgrid[0:32, 0:32]
    want = (cc + 0.5 - 12.3) ** 2 + (rr + 0.5 - 15.8) ** 2 <= (0.85 * 10.0) ** 2
    assert torch.equal(mask, torch.from_numpy(want))


@pytest.mark.parametrize("name,verts", [
    ("triangle", [(0.0, -1.0), (0.866, 0.5), (-0.866, 0.5)]),
    ("arrow", [(-0.85, -0.18), (0.1, -0.18), (0.1, -0.6), (0.9, 0.0), (0.1, 0.6), (0.1, 0.18),
               (-0.85, 0.18)]),
])
def test_rotated_polygon_matches_matplotlib(name, verts):
    cx, cy, r, th = 16.2, 15.1, 11.0, 0.9
    k = list(_render.SHAPES).index(name)
    mask = _render.target_masks(torch.tensor([k]), torch.tensor([[cx, cy, r, th]]), 32)[0]
    # the canonical frame is rotated by +theta into the image
    pts = [(cx + r * (u * math.cos(th) - v * math.sin(th)), cy + r * (u * math.sin(th) + v * math.cos(th)))
           for u, v in verts]
    rr, cc = np.mgrid[0:32, 0:32]
    centres = np.stack([cc.ravel() + 0.5, rr.ravel() + 0.5], 1)
    want = Path(pts).contains_points(centres).reshape(32, 32)
    assert torch.equal(mask, torch.from_numpy(want))


def test_every_class_fits_its_disk_and_is_substantial():
    k = len(_render.SHAPES)
    place = torch.tensor([[32.0, 32.0, 20.0, 0.3]]).expand(k, 4)
    masks = _render.target_masks(torch.arange(k), place, 64)
    rr, cc = np.mgrid[0:64, 0:64]
    disk = torch.from_numpy((cc + 0.5 - 32) ** 2 + (rr + 0.5 - 32) ** 2 <= 20.0 ** 2)
    assert not (masks & ~disk).any()
    areas = masks.flatten(1).sum(1).float() / disk.sum()
    assert areas.min() > 0.2, dict(zip(_render.SHAPES, areas.tolist()))
    # no two classes have the same mask (at the same placement)
    assert len({m.numpy().tobytes() for m in masks}) == k


def test_capsule_and_mask_to_box():
    seg = torch.tensor([[[4.0, 5.0, 20.0, 5.0]]])
    m = _render.capsule_masks(seg, torch.tensor([1.0]), 32)[0]
    assert m[5, 4:21].all() and m[4, 4:20].all() and not m[7].any() and not m[5, :3].any()
    assert _render.mask_to_box(m[None])[0].tolist() == tight_box(m)
    assert _render.mask_to_box(torch.zeros(1, 8, 8, dtype=torch.bool))[0].tolist() == [0, 0, 0, 0]


# -- the dataset ------------------------------------------------------------------------------

def test_registered_with_metadata():
    for name in ("shapes", "shapes_pair"):
        meta = DATASETS.get(name).meta
        assert meta["masks"] and meta["boxes"] and meta["source"] == "embedded"


def test_same_seed_same_samples_other_seed_or_split_differs(train):
    again = fresh("shapes", "train")
    for i in (0, 7, 299):
        a, b = train[i], again[i]
        assert torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask) and a.label == b.label
    other_seed, other_split = fresh("shapes", "train", seed=1), fresh("shapes", "val")
    for i in (0, 7):
        assert not torch.equal(train[i].image, other_seed[i].image)
        assert not torch.equal(train[i].mask, other_seed[i].mask)
        assert not torch.equal(train[i].image, other_split[i].image)
    assert train.fingerprint() == again.fingerprint()
    assert len({train.fingerprint(), other_seed.fingerprint(), other_split.fingerprint()}) == 3


def test_sample_depends_only_on_seed_split_index(train):
    small = fresh("shapes", "train", n_train=10)
    for i in range(10):
        assert torch.equal(small[i].image, train[i].image) and torch.equal(small[i].mask, train[i].mask)


def test_sample_fields(train):
    s = train[5]
    assert s.image.shape == (3, 32, 32) and s.image.dtype == torch.float32
    assert 0.0 <= s.image.min() and s.image.max() <= 1.0
    assert s.mask.shape == (32, 32) and s.mask.dtype == torch.bool
    assert s.sample_id == 5 and s.label == 5 % train.num_classes
    assert s.parts is None and s.part_labels is None
    assert train.num_classes == len(train.class_names) >= 10
    assert len(train) == 300 and len(fresh("shapes", "test")) == 40
    batch = load_batch(train, [0, 1, 2])
    assert batch.x.shape == (3, 3, 32, 32) and batch.box.shape == (3, 4)


def test_masks_nonempty_and_boxes_tight(train):
    t = train.tensors()
    assert t.images.shape == (300, 3, 32, 32) and t.masks.shape == (300, 32, 32)
    areas = t.masks.flatten(1).sum(1)
    assert areas.min() >= 20  # every target is a real object, not a speck
    for i in range(0, 300, 13):
        assert t.boxes[i].tolist() == tight_box(t.masks[i])
        assert torch.equal(train[i].box, t.boxes[i]) and torch.equal(train[i].mask, t.masks[i])
        assert (box_to_mask(t.boxes[i], 32, 32) | ~t.masks[i]).all()
    assert torch.equal(t.sample_ids, torch.arange(300))


def test_painted_object_equals_its_mask(train):
    """Inside the mask the colour is flat (up to pixel noise); one pixel outside it is not."""
    t = train.tensors()
    ring = _render.dilate(t.masks, 1) & ~t.masks
    for i in range(0, 300, 7):
        img, m = t.images[i], t.masks[i]
        colour = img[:, m].median(dim=1).values[:, None]
        inside = (img[:, m] - colour).norm(dim=0)
        outside = (img[:, ring[i]] - colour).norm(dim=0)
        assert (inside < 0.2).float().mean() > 0.98
        assert (outside > 0.2).float().mean() > 0.95


def test_classes_balanced(train):
    counts = torch.bincount(train.tensors().labels, minlength=train.num_classes)
    assert counts.max() - counts.min() <= 1


def test_distractors_present_and_clear_of_target(train):
    dist = train.distractor_masks()
    masks = train.tensors().masks
    has = dist.flatten(1).any(1).float().mean().item()
    assert 0.4 < has < 0.9  # 0..2 distractors: about two thirds of the images have some
    assert not (dist & _render.dilate(masks, 1)).any()


def test_unknown_split_and_bad_params():
    with pytest.raises(BenchError, match="unknown split 'tset'"):
        get_dataset("shapes", "tset")
    with pytest.raises(BenchError, match="image_size"):
        get_dataset("shapes", "train", {"image_size": 8})
    with pytest.raises(BenchError, match="unknown key"):
        get_dataset("shapes", "train", {"n_trian": 5})
    with pytest.raises(BenchError, match="did you mean 'shapes'"):
        get_dataset("shape", "train")
    with pytest.raises(IndexError):
        fresh("shapes", "val")[40]


def test_get_dataset_memoizes():
    a = get_dataset("shapes", "val", {"n_val": 12})
    assert a is get_dataset("shapes", "val", {"n_val": 12}) and len(a) == 12


def test_image_size_64():
    ds = fresh("shapes", "val", image_size=64, n_val=4)
    s = ds[3]
    assert s.image.shape == (3, 64, 64) and s.mask.shape == (64, 64) and s.mask.sum() >= 80


# -- shapes_pair ------------------------------------------------------------------------------

def test_pair_parts_on_their_halves_with_different_labels(pair):
    for i in range(40):
        s = pair[i]
        assert s.parts.shape == (2, 32, 32) and s.part_labels.shape == (2,)
        left, right = s.parts
        assert left.any() and right.any()
        assert not left[:, 16:].any() and not right[:, :16].any()
        assert s.part_labels[0] != s.part_labels[1]
        assert s.label == int(s.part_labels[0]) == i % pair.num_classes
        assert torch.equal(s.mask, left) and s.box.tolist() == tight_box(left)
    dist = pair.distractor_masks()
    batch = load_batch(pair, range(40))
    assert not (dist & _render.dilate(batch.parts.any(1), 1)).any()
    assert batch.parts.shape == (40, 2, 32, 32) and batch.part_labels.shape == (40, 2)


def test_pair_right_labels_cover_all_classes(pair):
    right = torch.stack([pair[i].part_labels[1] for i in range(40)])
    assert len(set(right.tolist())) >= 8


# -- normalization constants --------------------------------------------------------------

@pytest.mark.parametrize("name,mean,std", [("shapes", SHAPES_MEAN, SHAPES_STD),
                                           ("shapes_pair", PAIR_MEAN, PAIR_STD)])
def test_normalization_constants(name, mean, std):
    """The constants in the code match a fresh measurement on the default train split
    (first 2048 images; the constants were measured on all 8000)."""
    ds = fresh(name, "train", n_train=2048)
    px = ds.tensors().images.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(px.mean(1), torch.tensor(mean), atol=1e-2)
    assert torch.allclose(px.std(1), torch.tensor(std), atol=1e-2)
