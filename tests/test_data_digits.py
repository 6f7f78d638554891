"""The ``digits`` family (cluttered scikit-learn digits): disjoint source pools, exact stroke
masks (known answers computed here independently of ``grid_sample``), determinism per sample
id, fingerprints, fragments and normalization; and the zoo's per-family card lookup."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bench.data import _digits, get_dataset
from bench.data.digits import DIGITS_MEAN, DIGITS_STD
from bench.errors import BenchError
from bench.registry import DATASETS

SMALL = {"n_train": 120, "n_val": 40, "n_test": 120}


def fresh(split: str, **params):
    """A new (not memoized) instance, so determinism is tested across instances."""
    entry = DATASETS.get("digits")
    return entry.obj(split, entry.make_params({**SMALL, **params}))


@pytest.fixture(scope="module")
def train():
    return fresh("train")


@pytest.fixture(scope="module")
def test():
    return fresh("test")


def reference_strokes(image: np.ndarray, x0: float, y0: float, side: float, size: int,
                      threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The digit's strokes by the definition in ``bench/data/_digits.py``, pixel by pixel:
    canvas pixel centre -> source coordinate, bilinear between source pixel centres with zero
    outside the 8x8 grid, no ink outside the digit's square. Returns (strokes, ink) ``[H, W]``."""
    ink = np.zeros((size, size))
    scale = side / 8.0
    for row in range(size):
        for col in range(size):
            sx, sy = (col + 0.5 - x0) / scale, (row + 0.5 - y0) / scale
            if not (0 <= sx < 8 and 0 <= sy < 8):
                continue
            fx, fy = sx - 0.5, sy - 0.5  # source pixel centres sit at j + 0.5
            i0, j0 = int(np.floor(fx)), int(np.floor(fy))
            value = 0.0
            for dj, wy in ((0, 1 - (fy - j0)), (1, fy - j0)):
                for di, wx in ((0, 1 - (fx - i0)), (1, fx - i0)):
                    i, j = i0 + di, j0 + dj
                    if 0 <= i < 8 and 0 <= j < 8:
                        value += wx * wy * image[j, i]
            ink[row, col] = value
    return ink >= threshold, ink


# -- pools: no test digit image is ever seen in training -----------------------------------------

def test_pools_are_disjoint_stratified_and_cover_all_source_images():
    pools = _digits.pools(0, 0.2, 0.1)
    images, labels, _ = _digits.source_digits()
    sets = {s: set(p.tolist()) for s, p in pools.items()}
    assert not (sets["train"] & sets["test"]) and not (sets["train"] & sets["val"]) and not (sets["val"] & sets["test"])
    assert sets["train"] | sets["val"] | sets["test"] == set(range(len(labels)))
    assert len(sets["test"]) == pytest.approx(0.2 * len(labels), abs=10)
    for split in ("train", "val", "test"):  # every class in every pool
        assert set(labels[pools[split]].tolist()) == set(range(10))
    # no two source images are equal, so disjoint indices are disjoint content too
    flat = images.flatten(1)
    assert len(torch.unique(flat, dim=0)) == len(flat)


def test_train_and_test_scenes_share_no_source_digit_image(train, test):
    def used(ds):
        frag = ds.fragment_sources()
        return set(ds.sources().tolist()) | set(frag[frag >= 0].tolist())

    train_used, test_used = used(train), used(test)
    assert train_used <= set(train.pool.tolist()) and test_used <= set(test.pool.tolist())
    assert not train_used & test_used
    assert len(test_used) > 150  # the scenes really draw across the pool
    # a fragment never comes from the scene's own digit image
    assert not (test.fragment_sources() == test.sources()[:, None]).any()


# -- exact masks --------------------------------------------------------------------------------

@pytest.mark.parametrize("index", [0, 7, 93, 119])
def test_mask_is_the_placed_digits_thresholded_upscaled_strokes(test, index):
    images, labels, _ = _digits.source_digits()
    sample = test[index]
    src = int(test.sources()[index])
    x0, y0, side = test.placements()[index].tolist()
    p = test.spec
    want, ink = reference_strokes(images[src].double().numpy(), x0, y0, side, p.image_size, p.threshold)
    got = sample.mask.numpy()
    differ = got != want
    # only pixels whose ink is the threshold up to float rounding may fall either way
    assert np.all(np.abs(ink[differ] - p.threshold) < 1e-5)
    assert differ.sum() <= 1 and want.sum() >= 10
    assert sample.label == labels[src] == index % 10
    assert p.digit_min * p.image_size - 1e-4 <= side <= p.digit_max * p.image_size + 1e-4
    assert 0 <= x0 <= p.image_size - side and 0 <= y0 <= p.image_size - side
    rows, cols = sample.mask.nonzero(as_tuple=True)
    assert sample.box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_threshold_sets_the_stroke_width():
    thin, thick = fresh("test", n_test=40, threshold=0.7), fresh("test", n_test=40, threshold=0.3)
    a, b = thin.tensors().masks, thick.tensors().masks
    assert torch.equal(thin.placements(), thick.placements())  # same scenes, only the threshold differs
    assert (a & ~b).sum() == 0 and b.sum() > 1.3 * a.sum()


def test_fragments_stay_clear_of_the_digit(test):
    t = test.tensors()
    frags = test.clutter_masks()
    gap = max(2, test.image_size // 16)
    grown = torch.nn.functional.max_pool2d(t.masks.float()[:, None], 2 * gap + 1, 1, gap)[:, 0] > 0
    assert not (frags & grown).any()
    n = (test.fragment_sources() >= 0).sum(1)
    assert n.max() <= test.spec.n_fragments_max and (n > 0).float().mean() > 0.6
    assert torch.equal(frags.flatten(1).any(1), n > 0)


def test_no_fragments_and_no_texture_give_a_flat_scene_with_the_digit_only():
    ds = fresh("test", n_test=16, n_fragments_max=0, texture="none")
    t = ds.tensors()
    assert not ds.clutter_masks().any() and ds.fragment_sources().shape == (16, 0)
    for img, mask in zip(t.images, t.masks):
        flat = img.flatten(1)
        colours = torch.unique(flat, dim=1)
        assert colours.shape[1] == 2  # background and digit, nothing else
        assert torch.unique(img[:, mask], dim=1).shape[1] == 1


# -- determinism and identity -------------------------------------------------------------------

def test_a_sample_depends_only_on_seed_split_and_id(test):
    other = fresh("test", n_test=130)  # another size, another instance
    for i in (0, 5, 64, 119):
        a, b = test[i], other[i]
        assert torch.equal(a.image, b.image) and torch.equal(a.mask, b.mask) and a.label == b.label
        assert a.sample_id == b.sample_id == i
    assert not torch.equal(fresh("test", seed=1, n_test=4)[0].image, test[0].image)
    assert not torch.equal(fresh("val", n_val=4)[0].image, test[0].image)


def test_fingerprint_is_stable_and_changes_with_every_param(test):
    base = test.fingerprint()
    assert fresh("test").fingerprint() == base
    assert fresh("train").fingerprint() != base
    changes = {"seed": 1, "digit_min": 0.3, "digit_max": 0.5, "n_fragments_max": 2, "fragment_max": 0.6,
               "threshold": 0.4, "texture": "low", "pool_seed": 1, "test_fraction": 0.25, "n_test": 121,
               "image_size": 48}
    prints = {fresh("test", **{k: v}).fingerprint() for k, v in changes.items()}
    assert len(prints) == len(changes) and base not in prints


def test_bad_params_are_refused():
    for bad in ({"digit_min": 0.5, "digit_max": 0.4}, {"n_fragments_max": 5}, {"threshold": 1.0},
                {"texture": "loud"}, {"test_fraction": 0.6}):
        with pytest.raises((BenchError, ValueError)):
            get_dataset("digits", "test", {**SMALL, **bad})
    with pytest.raises(BenchError, match="split"):
        fresh("holdout")


def test_normalization_constants(train):
    """A sample of the train split re-measures DIGITS_MEAN / DIGITS_STD (measured on 8192 scenes)."""
    x = train.tensors().images.transpose(0, 1).flatten(1)  # [3, N*H*W]
    assert x.mean(1).tolist() == pytest.approx(DIGITS_MEAN, abs=0.03)
    assert x.std(1).tolist() == pytest.approx(DIGITS_STD, abs=0.02)


def test_classes_are_balanced_and_registered(train):
    entry = DATASETS.get("digits")
    assert entry.spec.masks and entry.spec.boxes
    counts = torch.bincount(train.tensors().labels, minlength=10)
    assert counts.tolist() == [12] * 10
    assert train.num_classes == 10 and train.image_size == 32 and train.channels == 3


# -- the zoo's digits models --------------------------------------------------------------------

def test_zoo_finds_a_cards_digits_twin():
    from bench.models import get_card
    from bench.models.catalog import on_digits
    from bench.models.zoo import zoo_card_for

    for name in ("vgg5_ann", "vgg5_snn_t8", "vgg5_snn_t8_if", "vgg5_snn_t8_poisson", "vgg5_snn_t8_conv"):
        card = get_card(name)
        twin = zoo_card_for(card, "digits")
        assert twin == get_card(f"{name}_digits") == on_digits(card)
        assert twin.twin == f"{card.twin}_digits"
        assert dataclasses.replace(twin, name=card.name, dataset=card.dataset, twin=card.twin,
                                   summary=card.summary, train=card.train) == card
        assert zoo_card_for(card, "shapes") is card
    assert zoo_card_for(get_card("vgg5_snn_t4"), "digits").name == "vgg5_snn_t4"  # no digits twin: itself


def test_a_suite_on_digits_loads_the_digits_twin_of_its_model(tmp_path, monkeypatch):
    """``--set data.dataset=digits`` keeps the suite's model names: ``vgg5_ann`` on digits
    loads the zoo entry of ``vgg5_ann_digits`` (weights written here by a fake trainer)."""
    import bench.models.training as training
    from bench.models import build_model, get_card, load_model_with_provenance
    from bench.models.load import train_zoo

    def fake_train(card, **kw):
        return build_model(card, seed=7), {"test_accuracy": 0.5, "n_test": 10, "spike_rates": {},
                                           "train_time_s": 1.0, "history": []}

    monkeypatch.setattr(training, "train", fake_train)
    train_zoo(["vgg5_ann_digits"], "snnxai train --zoo", progress=False, log=lambda s: None, root=tmp_path)
    model, prov = load_model_with_provenance("vgg5_ann", dataset="digits", zoo_dir=tmp_path,
                                             cache_dir=tmp_path / "cache", train_if_missing=False)
    assert model.card == get_card("vgg5_ann")  # the suite's card, the digits weights
    assert prov.source == "zoo" and prov.file == tmp_path / "vgg5_ann_digits.pt"
    assert torch.equal(model.convs[0].weight, build_model("vgg5_ann_digits", seed=7).convs[0].weight)
    with pytest.raises(BenchError, match="no trained checkpoint"):  # on shapes: its own entry, absent here
        load_model_with_provenance("vgg5_ann", zoo_dir=tmp_path, cache_dir=tmp_path / "cache",
                                   train_if_missing=False)
