"""`data.train_dataset`: probe models trained on one dataset with another (the zoo's `shapes`
models on `shapes_pair` or another texture level) without retraining them."""

from __future__ import annotations

import json

import pytest

from bench.errors import BenchError
from bench.pipeline.plan import make_plan
from bench.pipeline.runtime import Clock, ModelLoader, Progress
from bench.suite import load_suite


def test_default_suite_hash_unchanged_without_train_dataset():
    # the committed default run's id: a suite that does not name train_dataset keeps its hash
    from test_suite_config import DEFAULT_HASH

    assert load_suite("default").config_hash() == DEFAULT_HASH


def test_training_data_falls_back_to_the_evaluated_data():
    s = load_suite("default", overrides=['data.params={texture="low"}'])
    assert s.data.training_data() == ("shapes", {"texture": "low"})
    s = load_suite("default", overrides=['data.params={texture="low"}', 'data.train_dataset="shapes"'])
    assert s.data.training_data() == ("shapes", None)


def test_train_params_without_train_dataset_is_an_error():
    with pytest.raises(BenchError, match="train_params needs data.train_dataset"):
        load_suite("default", overrides=['data.train_params={texture="none"}'])


def test_zoo_model_probed_on_another_dataset(tmp_path):
    s = load_suite("smoke", overrides=['data.dataset="shapes_pair"', 'data.train_dataset="shapes"',
                                       'models=["vgg5_snn_t8"]', "run.n_samples=2",
                                       f'run.cache_dir="{tmp_path / "cache"}"'])
    loader = ModelLoader(make_plan(s), tmp_path / "out", Clock(), Progress(False))
    loader("vgg5_snn_t8")
    record = json.loads((tmp_path / "out" / "cells" / "_checkpoints" / "vgg5_snn_t8.json").read_text())
    assert record["source"] == "zoo"  # the shipped checkpoint, not a model trained on pairs
    assert not (tmp_path / "cache" / "checkpoints").exists() or not any((tmp_path / "cache" / "checkpoints").iterdir())
