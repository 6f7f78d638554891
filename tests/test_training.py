"""Training for real on tiny models, the checkpoint cache, and the train command."""

import dataclasses
import math

import pytest
import torch

import bench.models as models
import bench.models.load as load_mod
import bench.models.training as training
from bench.cli import main as cli
from bench.errors import BenchError
from bench.models import build_model, ensure_trained, get_card, load_model
from bench.models.cache import cache_key, load_checkpoint, sidecar
from bench.models.card import TrainParams

SMALL = {"n_train": 64, "n_val": 0, "n_test": 32}  # shapes params: a tiny split
TINY = TrainParams(epochs=1, batch_size=32, lr=5e-3, optimizer="adam", weight_decay=0.0, n_train=64)


def tiny(name, **kw):
    card = get_card(name)
    return dataclasses.replace(card, T=min(card.T, 2), train=dataclasses.replace(TINY, **kw))


@pytest.fixture
def fake_cards(monkeypatch, tmp_path):
    """Registered names resolve to tiny cards (and an empty zoo); counts real calls of ``fit``."""
    import bench.models.zoo as zoo

    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "empty_zoo")
    cards = {n: tiny(n) for n in ("vgg5_ann", "vgg5_snn_t8", "vgg5_snn_t8_conv")}
    monkeypatch.setattr(load_mod, "get_card", lambda n: cards[n])
    monkeypatch.setattr(models, "get_card", lambda n: cards[n])
    calls = []
    real_fit = training.fit

    def counting_fit(*args, **kw):
        calls.append(args[1].name)
        return real_fit(*args, **kw)

    monkeypatch.setattr(training, "fit", counting_fit)
    return cards, calls


def _data(n, seed):
    from bench.data import get_dataset
    from bench.models.training import load_split

    return load_split(get_dataset("shapes", "train", {**SMALL, "n_train": n, "seed": seed}))


def test_a_few_steps_decrease_the_loss():
    card = tiny("vgg5_snn_t8", epochs=6)  # 6 steps on the same 32 samples
    model = build_model(card)
    train = _data(32, 0)
    history = training.fit(model, card, train, train, progress=False, log=lambda s: None)
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert set(history[-1]["spike_rates"]) == {"conv1", "conv2", "conv3", "conv4"}


def test_learning_rate_schedules():
    tp = TrainParams(schedule="cosine")
    assert training.lr_factor(tp, 0, 100) == 1.0 and training.lr_factor(tp, 50, 100) == pytest.approx(0.5)
    assert training.lr_factor(tp, 100, 100) == pytest.approx(0.0, abs=1e-12)
    step = TrainParams(schedule="step")  # the paper's: /10 at 50, 70 and 90 %
    assert [training.lr_factor(step, s, 100) for s in (0, 49, 50, 70, 95)] == \
        pytest.approx([1, 1, 0.1, 0.01, 0.001])


def test_cache_trains_once_and_refuses_tampered_checkpoints(tmp_path, fake_cards):
    cards, calls = fake_cards
    card = cards["vgg5_snn_t8"]
    path, meta, trained = ensure_trained(card, params=SMALL, cache_dir=tmp_path, progress=False, log=print)
    assert trained and path.exists() and calls == ["vgg5_snn_t8"]
    assert path.parent == tmp_path / "models" and meta["sha256"] and 0 <= meta["test_accuracy"] <= 1
    again, _, trained2 = ensure_trained(card, params=SMALL, cache_dir=tmp_path, progress=False)
    assert again == path and not trained2 and calls == ["vgg5_snn_t8"]  # nothing trained
    m = load_model("vgg5_snn_t8", cache_dir=tmp_path, params=SMALL, zoo_dir=tmp_path, train_if_missing=False)
    assert not m.training and calls == ["vgg5_snn_t8"]
    state, _ = load_checkpoint(path)
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    # a different seed or epoch count is a different key
    assert cache_key(card, meta["data"], 1) != cache_key(card, meta["data"], 0) != \
        cache_key(dataclasses.replace(card, train=dataclasses.replace(card.train, epochs=2)), meta["data"], 0)
    path.write_bytes(path.read_bytes() + b"\0")  # tamper
    with pytest.raises(BenchError, match="sha256 mismatch"):
        load_model("vgg5_snn_t8", cache_dir=tmp_path, params=SMALL, zoo_dir=tmp_path)
    sidecar(path).unlink()
    with pytest.raises(BenchError, match="sidecar"):
        load_checkpoint(path)


def test_missing_checkpoint_without_training_is_an_error(tmp_path, fake_cards):
    with pytest.raises(BenchError, match="snnxai train vgg5_ann"):
        load_model("vgg5_ann", cache_dir=tmp_path, params=SMALL, zoo_dir=tmp_path, train_if_missing=False)


def test_converted_model_trains_its_twin_first(tmp_path, fake_cards):
    cards, calls = fake_cards
    path, meta, trained = ensure_trained(cards["vgg5_snn_t8_conv"], params=SMALL, cache_dir=tmp_path,
                                         progress=False, log=lambda s: None)
    assert trained and calls == ["vgg5_ann"] and meta["history"] == []  # conversion: no SNN training
    assert set(meta["spike_rates"]) == {"conv1", "conv2", "conv3", "conv4"}
    assert len(list((tmp_path / "models").glob("*.pt"))) == 2
    snn = load_model("vgg5_snn_t8_conv", cache_dir=tmp_path, params=SMALL, zoo_dir=tmp_path)
    assert snn.convs[0].bias is not None and math.isfinite(float(snn(torch.zeros(1, 3, 32, 32)).detach().sum()))


def test_train_command(tmp_path, fake_cards, capsys):
    _, calls = fake_cards
    argv = ["train", "vgg5_ann", "--cache-dir", str(tmp_path), "--no-progress",
            "--data-param", "n_train=64", "--data-param", "n_val=0", "--data-param", "n_test=32"]
    assert cli(argv) == 0 and cli(argv) == 0
    out = capsys.readouterr().out
    assert "vgg5_ann: trained" in out and "already cached, nothing trained" in out and calls == ["vgg5_ann"]
    assert cli(["train"]) == 2
    assert cli(["train", "--zoo", "--epochs", "3"]) == 2
    assert "--zoo trains the shipped recipes" in capsys.readouterr().err
    assert cli(["train", "vgg5_ann", "--epochs", "0", "--cache-dir", str(tmp_path)]) == 2


def test_unknown_model_in_train_command(capsys):
    assert cli(["train", "vgg5_snn_t9", "--cache-dir", "/nonexistent"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_with_recipe_replaces_checked_fields():
    card = get_card("vgg5_ann")
    new = training.with_recipe(card, {"epochs": 24, "lr": 2e-3, "n_train": 16000, "schedule": "step", "weight_decay": 0,
                                      "init": "twin"})
    assert (new.train.epochs, new.train.lr, new.train.n_train, new.train.schedule) == (24, 2e-3, 16000, "step")
    assert new.train.init == "twin"
    assert new.train.weight_decay == 0.0 and isinstance(new.train.weight_decay, float)
    assert new.train.batch_size == card.train.batch_size and card.train.epochs == 8  # the card is untouched
    assert training.with_recipe(card, {}) is card
    for bad in ({"epoch": 3}, {"epochs": 0}, {"epochs": 2.5}, {"lr": 0}, {"lr": "fast"},
                {"optimizer": "lion"}, {"init": "ann"}, {"batch_size": True}, {"weight_decay": -1e-4}):
        with pytest.raises(BenchError):
            training.with_recipe(card, bad)
    conv = get_card("vgg5_snn_t8_conv")
    assert training.with_recipe(conv, {"n_train": 500}).train.n_train == 500
    with pytest.raises(BenchError, match="converted"):
        training.with_recipe(conv, {"lr": 1e-3})  # the twin is trained with its own card's recipe


def test_train_command_recipe_param(tmp_path, fake_cards, capsys):
    _, calls = fake_cards
    data = ["--data-param", "n_train=64", "--data-param", "n_val=0", "--data-param", "n_test=32"]
    base = ["train", "vgg5_ann", "--cache-dir", str(tmp_path), "--no-progress", *data]
    assert cli(base) == 0
    assert cli([*base, "--recipe-param", "epochs=2", "--recipe-param", "lr=1e-3"]) == 0
    assert calls == ["vgg5_ann", "vgg5_ann"]  # a different recipe is a different checkpoint
    metas = sorted((load_checkpoint(p)[1] for p in (tmp_path / "models").glob("*.pt")),
                   key=lambda m: m["card"]["train"]["epochs"])
    assert [(m["card"]["train"]["epochs"], m["card"]["train"]["lr"]) for m in metas] == [(1, 5e-3), (2, 1e-3)]
    assert [len(m["history"]) for m in metas] == [1, 2]
    capsys.readouterr()
    assert cli([*base, "--recipe-param", "n_train=128"]) == 2  # more than the 64 generated images
    assert "--data-param n_train=128" in capsys.readouterr().err
    assert cli([*base, "--recipe-param", "epochz=2"]) == 2
    assert cli(["train", "--zoo", "--recipe-param", "epochs=2"]) == 2
    assert calls == ["vgg5_ann", "vgg5_ann"]


def test_init_from_another_model_starts_from_its_weights_trained_on_its_own_data(tmp_path, fake_cards, monkeypatch):
    cards, calls = fake_cards
    cards["vgg5_snn_t8_if"] = tiny("vgg5_snn_t8_if", init="vgg5_snn_t8")
    source = build_model(cards["vgg5_snn_t8"], seed=7)
    loads, start = [], {}

    def fake_load_model(name, device="cpu", **kw):  # the source as the zoo/cache would give it
        loads.append((name, kw.get("dataset"), kw.get("params")))
        return source

    def spy_fit(model, card, *a, **kw):
        start.update({k: v.clone() for k, v in model.state_dict().items()})
        calls.append(card.name)
        return []

    monkeypatch.setattr(load_mod, "load_model", fake_load_model)
    monkeypatch.setattr(training, "fit", spy_fit)
    path, meta, trained = ensure_trained(cards["vgg5_snn_t8_if"], params=SMALL, cache_dir=tmp_path,
                                         progress=False, log=lambda s: None)
    # the source is loaded by name with its own data (no dataset/params of this model), and
    # training starts from exactly its weights
    assert trained and loads == [("vgg5_snn_t8", None, None)] and calls == ["vgg5_snn_t8_if"]
    assert all(torch.equal(v, start[k]) for k, v in source.state_dict().items())
    # the source's card is part of the key: another source recipe is another checkpoint; a
    # model without a source keeps the key it had
    data, other = meta["data"], tiny("vgg5_snn_t8", lr=1e-3)
    key = cache_key(cards["vgg5_snn_t8_if"], data, 0, None, cards["vgg5_snn_t8"])
    assert meta["key"] == key != cache_key(cards["vgg5_snn_t8_if"], data, 0, None, other)
    assert cache_key(cards["vgg5_snn_t8"], data, 0) == cache_key(cards["vgg5_snn_t8"], data, 0, None, None)


def test_init_from_model_copies_every_tensor_or_names_the_first_misfit():
    src, dst = build_model("vgg5_snn_t8", seed=1), build_model("vgg5_snn_t8_if", seed=2)
    training.init_from_model(dst, src, "vgg5_snn_t8_if", "vgg5_snn_t8")
    assert all(torch.equal(v, src.state_dict()[k]) for k, v in dst.state_dict().items())
    with pytest.raises(BenchError, match=r"cannot start from vgg5_snn_t8_events: "
                                         r"convs.0.weight is \(16, 3, 3, 3\) here and \(16, 2, 3, 3\) there"):
        training.init_from_model(dst, build_model("vgg5_snn_t8_events"), "vgg5_snn_t8_if", "vgg5_snn_t8_events")


def test_recipe_init_names_a_model_of_the_same_architecture_and_kind():
    card = get_card("vgg5_snn_t8_frames")
    assert training.with_recipe(card, {"init": "vgg5_snn_t8"}).train.init == "vgg5_snn_t8"
    assert training.init_source(training.with_recipe(card, {"init": "vgg5_snn_t8"})) == "vgg5_snn_t8"
    assert training.init_source(card.__class__(**{**card.__dict__, "train": TINY})) is None
    for bad, msg in (("vgg5_ann", "same architecture and kind"), ("vgg5_snn_t8_frames", "same architecture"),
                     ("vgg5_snn_t9", "did you mean"), (3, "scratch, twin or a model name")):
        with pytest.raises(BenchError, match=msg):
            training.with_recipe(card, {"init": bad})
