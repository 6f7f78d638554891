"""The embedded synthetic datasets ``shapes`` and ``shapes_pair``: determinism, exact masks,
boxes, balance, distractors, the pair layout and the normalization constants; the ``centred``
layout pinned byte for byte to generator version 2, and the ``headroom`` layout's statistics,
clutter and texture levels.

Tests name the layout explicitly, so they keep testing the same data when the default
(``bench.data.shapes.DEFAULT_LAYOUT``) changes."""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np
import pytest
import torch
from matplotlib.path import Path

from bench.data import _headroom, _render, get_dataset
from bench.data.base import box_to_mask, load_batch
from bench.data.pair import PAIR_MEAN, PAIR_STD
from bench.data.shapes import HEADROOM_MEAN, HEADROOM_STD, SHAPES_MEAN, SHAPES_STD
from bench.errors import BenchError
from bench.registry import DATASETS

SMALL = {"n_train": 300, "n_val": 40, "n_test": 40}
CENTRED = {"layout": "centred"}
HEADROOM = {"layout": "headroom"}


def fresh(name: str, split: str, **params):
    """A new (not memoized) dataset instance, so determinism is tested across instances."""
    entry = DATASETS.get(name)
    if name == "shapes":
        params = {**CENTRED, **params}  # the layout these tests were written for, unless named
    return entry.obj(split, entry.make_params({**SMALL, **params}))


@pytest.fixture(scope="module")
def train():
    return fresh("shapes", "train")


@pytest.fixture(scope="module")
def headroom():
    """200 headroom test images (the statistics below are measured on them)."""
    return fresh("shapes", "test", n_test=200, **HEADROOM)


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
        meta = dataclasses.asdict(DATASETS.get(name).spec)
        assert meta["masks"] and meta["boxes"] and meta["source"] == "embedded"


@pytest.mark.slow
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
    with pytest.raises(BenchError, match="layout"):
        get_dataset("shapes", "train", {"layout": "random"})
    with pytest.raises(BenchError, match="texture"):
        get_dataset("shapes", "train", {"texture": "medium"})
    with pytest.raises(BenchError, match="n_clutter_max applies to layout 'headroom'"):
        get_dataset("shapes", "train", {"layout": "centred", "n_clutter_max": 2})
    with pytest.raises(BenchError, match="n_clutter_max must be in 0..4"):
        get_dataset("shapes", "train", {"layout": "headroom", "n_clutter_max": 5})
    with pytest.raises(BenchError, match="scale_min"):
        get_dataset("shapes", "train", {"layout": "headroom", "scale_min": 0.3, "scale_max": 0.2})
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

@pytest.mark.slow  # re-measures the committed constants on 2048 generated images per dataset
@pytest.mark.parametrize("name,params,mean,std", [("shapes", CENTRED, SHAPES_MEAN, SHAPES_STD),
                                                  ("shapes", HEADROOM, HEADROOM_MEAN, HEADROOM_STD),
                                                  ("shapes_pair", {}, PAIR_MEAN, PAIR_STD)])
def test_normalization_constants(name, params, mean, std):
    """The constants in the code match a fresh measurement on the default train split
    (first 2048 images; the constants were measured on all 8000)."""
    ds = fresh(name, "train", n_train=2048, **params)
    assert (ds.mean, ds.std) == (mean, std)
    px = ds.tensors().images.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(px.mean(1), torch.tensor(mean), atol=1e-2)
    assert torch.allclose(px.std(1), torch.tensor(std), atol=1e-2)


# -- the centred layout is generator version 2, byte for byte ---------------------------------

def digest(ds, ids) -> str:
    """sha256 (16 hex) over the uint8 images, masks, labels (and parts) of samples ``ids``."""
    h = hashlib.sha256()
    for i in ids:
        s = ds[i]
        h.update((s.image * 255).round().to(torch.uint8).numpy().tobytes())
        h.update(s.mask.numpy().tobytes())
        h.update(str(s.label).encode())
        if s.parts is not None:
            h.update(s.parts.numpy().tobytes())
            h.update(s.part_labels.numpy().tobytes())
    return h.hexdigest()[:16]


# Measured on the generator before the headroom layout and texture levels were added.
PINNED = [
    ("shapes", "train", {}, "2a774273616be347", "3310c9f789d171bd", "6c44c6712bc2"),
    ("shapes", "test", {}, "51326f67c00b65c0", "76135c9b49600ace", "1b3cc9da9543"),
    ("shapes", "test", {"texture": "default"}, "51326f67c00b65c0", "76135c9b49600ace", "1b3cc9da9543"),
    ("shapes_pair", "train", {}, "c41ecb670b7c9414", "c2c8b8eddaa6469e", "b1081868151d"),
    ("shapes_pair", "test", {}, "a0e9f1e9c8c8e0b1", "26a59c965ad473b1", "4446aa0b0478"),
]


@pytest.mark.parametrize("name,split,params,want,want_dist,want_fp", PINNED)
def test_centred_layout_is_generator_v2_byte_for_byte(name, split, params, want, want_dist, want_fp):
    ds = fresh(name, split, n_train=300, n_val=1000, n_test=300, **params)
    assert digest(ds, [0, 1, 7, 123, 299]) == want
    assert hashlib.sha256(ds.distractor_masks().numpy().tobytes()).hexdigest()[:16] == want_dist
    assert ds.fingerprint() == want_fp and ds.generator_version == 2


def test_centred_identity_unchanged():
    """Fingerprints, model caches and zoo sidecars record ``ds.params``: for the centred layout
    it is the version-2 params table, so existing checkpoints keep matching."""
    ds = fresh("shapes", "test", n_train=8000, n_test=1000)
    assert ds.params == {"image_size": 32, "seed": 0, "n_train": 8000, "n_val": 40, "n_test": 1000,
                         "n_distractors_max": 2, "scale_min": 0.25, "scale_max": 0.36}
    full = get_dataset("shapes", "test", CENTRED)
    assert full.fingerprint() == "7fcc1b087b25"
    assert get_dataset("shapes", "train", CENTRED).fingerprint() == "f93dea0de060"  # the zoo's
    assert get_dataset("shapes_pair", "test").fingerprint() == "b117ed6e9d21"
    assert not full.clutter_masks().any()


def test_image_size_64_centred_pinned():
    assert digest(fresh("shapes", "val", image_size=64, n_val=4), range(4)) == "a108203854d6213c"


# -- the headroom layout ------------------------------------------------------------------------

@pytest.mark.slow
def test_headroom_is_its_own_generator_version(headroom):
    centred = fresh("shapes", "test", n_test=200)
    assert headroom.generator_version == 3 and headroom.params["layout"] == "headroom"
    assert headroom.fingerprint() != centred.fingerprint()
    assert len({fresh("shapes", "test", n_test=200, texture=t, **HEADROOM).fingerprint()
                for t in ("none", "low", "default", "high")}) == 4
    assert not torch.equal(headroom[0].image, centred[0].image)
    assert (headroom.mean, headroom.std) == (HEADROOM_MEAN, HEADROOM_STD)


def test_headroom_deterministic_per_sample(headroom):
    again = fresh("shapes", "test", n_test=10, **HEADROOM)
    other = fresh("shapes", "test", n_test=10, seed=1, **HEADROOM)
    clutter = headroom.clutter_masks()
    for i in range(10):
        assert torch.equal(again[i].image, headroom[i].image) and torch.equal(again[i].mask, headroom[i].mask)
        assert again[i].label == headroom[i].label == i % 10
    assert torch.equal(again.clutter_masks(), clutter[:10])
    assert not torch.equal(other.tensors().images, again.tensors().images)


def test_headroom_targets_small_and_spread(headroom):
    """Mask area ~3-10% of the image, centroids spread over the canvas, the centre rarely hit."""
    t = headroom.tensors()
    s = headroom.image_size
    area = t.masks.flatten(1).float().mean(1)
    assert 0.03 <= area.mean() <= 0.10 and area.min() > 0.01 and area.max() < 0.12
    assert (t.masks.flatten(1).sum(1) >= 8).all()  # still a real object
    cols = torch.arange(s).view(1, 1, s) + 0.5
    rows = torch.arange(s).view(1, s, 1) + 0.5
    n = t.masks.flatten(1).sum(1)
    cx, cy = (t.masks * cols).flatten(1).sum(1) / n, (t.masks * rows).flatten(1).sum(1) / n
    uniform = s / math.sqrt(12)  # std of a coordinate uniform over the whole canvas
    assert cx.std() > 0.55 * uniform and cy.std() > 0.55 * uniform
    dist = ((cx - s / 2) ** 2 + (cy - s / 2) ** 2).sqrt()
    assert dist.mean() > 0.2 * s  # centred layout: 0.14 * s
    centre = t.masks[:, s // 2 - 1:s // 2 + 1, s // 2 - 1:s // 2 + 1].flatten(1).any(1)
    assert centre.float().mean() < 0.3  # centred layout: 0.71
    for i in range(0, 200, 17):  # boxes stay tight
        assert t.boxes[i].tolist() == tight_box(t.masks[i])


def test_headroom_clutter_salient_and_clear_of_target(headroom):
    t = headroom.tensors()
    clutter, dist = headroom.clutter_masks(), headroom.distractor_masks()
    has = clutter.flatten(1).any(1).float().mean().item()
    assert 0.6 < has < 0.9  # 0..3 clutter objects: about three quarters of the images have some
    # farther from the target than the pointing game's tolerance (2 px at 32): never a hit
    assert not (clutter & _render.dilate(t.masks, 2)).any()
    assert not (dist & (_render.dilate(t.masks, 1) | clutter)).any()
    # painted in the target's colour: the same contrast, as salient as the target
    for i in (clutter.flatten(1).any(1)).nonzero().flatten()[:20].tolist():
        target_colour = t.images[i][:, t.masks[i]].median(1).values
        clutter_colour = t.images[i][:, clutter[i]].median(1).values
        assert (target_colour - clutter_colour).abs().max() < 0.1


def test_painted_target_equals_its_mask_headroom(headroom):
    t = headroom.tensors()
    ring = _render.dilate(t.masks, 1) & ~t.masks
    for i in range(0, 200, 9):
        img, m = t.images[i], t.masks[i]
        colour = img[:, m].median(dim=1).values[:, None]
        assert ((img[:, m] - colour).norm(dim=0) < 0.2).float().mean() > 0.98
        assert ((img[:, ring[i]] - colour).norm(dim=0) > 0.2).float().mean() > 0.95


def best_iou(shape: torch.Tensor, k: int, size: int, radius: float) -> float:
    """Best IoU of ``shape`` ``[H, W]`` with class ``k`` over rotations and scales, centroids aligned."""
    def centred(m: torch.Tensor) -> torch.Tensor:
        r, c = m.nonzero(as_tuple=True)
        return torch.roll(m, (size // 2 - int(r.float().mean().round()), size // 2 - int(c.float().mean().round())), (0, 1))

    shape = centred(shape)
    th = torch.arange(36) * 2 * math.pi / 36
    best = 0.0
    for scale in (0.8, 1.0, 1.2):
        place = torch.stack([torch.full((36,), size / 2), torch.full((36,), size / 2),
                             torch.full((36,), radius * scale), th], 1)
        for m in _render.target_masks(torch.full((36,), k), place, size):
            m = centred(m)
            best = max(best, float((m & shape).sum() / (m | shape).sum()))
    return best


@pytest.mark.slow
def test_clutter_kinds_are_not_class_shapes():
    """Every clutter kind overlaps every class less (best IoU over rotations and scales, centroids
    aligned: < 0.7) than a class overlaps its own copy (> 0.9) or the closest class pair
    (triangle/trefoil, about 0.79 by the same measure)."""
    size, radius = 64, 24.0
    n = len(_render.CLUTTER)
    for bend in (0.0, 1.0):
        segs = _render.clutter_segments(torch.arange(n), torch.tensor([[32.0, 32.0]]).expand(n, 2),
                                        torch.full((n,), radius), torch.zeros(n), torch.full((n,), bend),
                                        torch.zeros(n))
        masks = _render.capsule_masks(segs, torch.full((n,), radius * 0.21), size)
        for j, kind in enumerate(_render.CLUTTER):
            for k, name in enumerate(_render.SHAPES):
                assert best_iou(masks[j], k, size, radius) < 0.7, (kind, bend, name)
    # the measure can fail: a class finds itself, and the closest class pair passes 0.7
    tri, tre = list(_render.SHAPES).index("triangle"), list(_render.SHAPES).index("trefoil")
    shapes = _render.target_masks(torch.tensor([0, tri]), torch.tensor([[30.0, 33.0, radius, 0.4]] * 2), size)
    assert best_iou(shapes[0], 0, size, radius) > 0.9 and best_iou(shapes[1], tre, size, radius) > 0.7


def test_clutter_masks_inside_the_image_and_kinds_all_used():
    params = DATASETS.get("shapes").make_params(HEADROOM)
    g = torch.Generator().manual_seed(0)
    u = torch.rand(300, _headroom.CLUTTER_FIELDS, generator=g)
    u[:, :2] = torch.tensor([0.0, 1.0]).repeat(150)[:, None]  # push every object to the border
    masks = _headroom.clutter_masks(u, params, 32)
    assert masks.flatten(1).sum(1).min() >= 6
    # full-size clutter at the border still fits: nothing clipped, so the edge pixels are few
    border = masks[:, 0].any(1) | masks[:, -1].any(1) | masks[:, :, 0].any(1) | masks[:, :, -1].any(1)
    assert border.float().mean() < 0.5


@pytest.mark.slow
def test_texture_levels_are_ordered():
    """Background variation (stripes + pixel noise) grows none < low < default < high, on the
    same scenes (the level scales the texture, nothing else)."""
    spread = {}
    for level in ("none", "low", "default", "high"):
        ds = fresh("shapes", "test", n_test=50, texture=level, **HEADROOM)
        t = ds.tensors()
        busy = _render.dilate(t.masks | ds.clutter_masks() | ds.distractor_masks(), 1)
        stds = [t.images[i][:, ~busy[i]].std(dim=1).mean() for i in range(50)]
        spread[level] = float(torch.stack(stds).mean())
        if level == "none":
            masks_none = t.masks
        else:
            assert torch.equal(t.masks, masks_none)
    assert spread["none"] < 1e-6  # a flat colour
    assert spread["none"] < spread["low"] < spread["default"] < spread["high"]
    centred = {lv: fresh("shapes", "test", n_test=20, texture=lv).tensors().images.std().item()
               for lv in ("none", "high")}
    assert centred["none"] != centred["high"]  # the centred layout takes the level too
