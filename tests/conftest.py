"""The shared test harness: fixtures over the models of ``basic_models.py`` (module-level test
helpers import those classes directly), the per-test seed, and the ``gpu`` marker.

Markers (declared in pyproject.toml):

- ``slow``: the zoo re-evaluation, repeated end-to-end runs, the perf harness and re-measured
  constants (dataset normalization, conversion quality). ``make test`` deselects them
  (``-m "not slow"``); ``make test-slow`` runs only them; ``.ci/run`` runs both.
- ``gpu``: needs CUDA; skipped (with the reason shown by ``-ra``) on a machine without it.
"""

from __future__ import annotations

import pytest
import torch
from basic_models import make_fire, tiny_vgg

import bench.models as models
from bench.models.arch import VGG


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (marked gpu)")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed_global_rng() -> None:
    """Every test starts from the same global torch RNG state, whichever tests ran before it in
    the process: deselecting the slow set, or running one file alone, cannot change a draw."""
    torch.manual_seed(0)


@pytest.fixture
def tiny_snn() -> VGG:
    """``basic_models.tiny_vgg("snn")``: a vgg5, T=4, 16x16 signed-Poisson input, layers spike.
    Shared across the session: a test must leave it unchanged."""
    return tiny_vgg("snn")


@pytest.fixture
def tiny_ann() -> VGG:
    """The ANN twin of ``tiny_snn`` (same architecture and seed)."""
    return tiny_vgg("ann")


@pytest.fixture
def untrained_zoo(monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench.models.load_model(name)`` -> the seeded, untrained zoo architecture with its
    convolutions scaled x3 so that its layers spike: no training, no zoo checkpoint read."""
    def load(name: str, device: str = "cpu", **kw: object) -> VGG:
        return make_fire(models.build_model(name).eval(), 3)

    monkeypatch.setattr(models, "load_model", load)
