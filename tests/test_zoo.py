"""The shipped zoo: complete, sha256-verified, current, and as accurate as recorded."""

import pytest
import torch

import bench.models.training as training
from bench.config import to_plain
from bench.data import get_dataset
from bench.errors import BenchError
from bench.models import get_card, load_model, load_model_with_provenance
from bench.models.build import data_config
from bench.models.cache import load_checkpoint, recorded_card
from bench.models.load import train_zoo
from bench.models.training import evaluate, load_split
from bench.models.zoo import ZOO_DIR, readme, zoo_names, zoo_path
from bench.store import file_digest

SUBSET = 500  # test samples re-evaluated (the sidecar records the accuracy on this subset too)


def test_zoo_is_complete_and_documented():
    # training order: every model after the ones its weights start from (the twin, train.init)
    assert zoo_names() == ["vgg5_ann", "vgg5_ann_digits", "vgg5_ann_frames", "vgg5_snn_t16", "vgg5_snn_t4",
                           "vgg5_snn_t8", "vgg5_snn_t8_conv", "vgg5_snn_t8_conv_digits", "vgg5_snn_t8_digits",
                           "vgg5_snn_t8_if", "vgg5_snn_t8_if_digits", "vgg5_snn_t8_poisson",
                           "vgg5_snn_t8_poisson_digits", "vgg5_snn_t8_frames"]
    assert (ZOO_DIR / "README.md").read_text() == readme()  # README written from the sidecars
    kinds = {get_card(n).encoding for n in zoo_names()}
    assert kinds == {"analog", "direct", "poisson_signed", "frames"}


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo_names())
def test_zoo_checkpoint_verifies_and_reaches_its_recorded_accuracy(name, monkeypatch, tmp_path):
    path = zoo_path(name)
    state, meta = load_checkpoint(path)  # raises on a sha256 mismatch
    assert meta["sha256"] == file_digest(path) and meta["bytes"] == path.stat().st_size < 1_000_000
    card = get_card(name)
    assert recorded_card(meta) == card and meta["data"] == to_plain(data_config(card))
    assert meta["command"].startswith("snnxai train") and meta["seed"] == 0 and meta["train_time_s"] > 0

    def no_training(*a, **k):
        raise AssertionError("a shipped model must load without training")

    monkeypatch.setattr(training, "train", no_training)
    model, prov = load_model_with_provenance(name, cache_dir=tmp_path)  # the zoo comes first
    assert prov.as_dict() == {"sha256": meta["sha256"], "path": f"bench/zoo/{name}.pt", "source": "zoo"}
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    x, y, ids = load_split(get_dataset(card.dataset, "test", {"image_size": card.input_size}), SUBSET)
    acc = evaluate(model, (x, y, ids), seed=0)
    assert acc == pytest.approx(meta["test_accuracy_first_500"], abs=0.01)
    assert acc == pytest.approx(meta["test_accuracy"], abs=0.03)


def test_train_zoo_writes_loadable_entries_and_readme(tmp_path, monkeypatch):
    from bench.models import build_model

    def fake_train(card, **kw):  # the writer is under test here, not the training
        assert kw["seed"] == 0 and kw["twin_loader"] is not None
        return build_model(card), {"test_accuracy": 0.5, "n_test": 10, "spike_rates": {"conv1": 0.1},
                                   "train_time_s": 1.0, "history": []}

    monkeypatch.setattr(training, "train", fake_train)
    metas = train_zoo(
        ["vgg5_ann", "vgg5_snn_t8"], "snnxai train --zoo", progress=False, log=lambda s: None, root=tmp_path)
    assert [m["name"] for m in metas] == ["vgg5_ann", "vgg5_snn_t8"]
    assert "`vgg5_snn_t8`" in (tmp_path / "README.md").read_text()
    model = load_model("vgg5_snn_t8", zoo_dir=tmp_path, cache_dir=tmp_path / "cache", train_if_missing=False)
    assert torch.equal(model.convs[0].weight, build_model("vgg5_snn_t8").convs[0].weight)
    (tmp_path / "vgg5_snn_t8.pt").write_bytes(b"tampered")
    with pytest.raises(BenchError, match="sha256 mismatch"):
        load_model("vgg5_snn_t8", zoo_dir=tmp_path, cache_dir=tmp_path / "cache", train_if_missing=False)
