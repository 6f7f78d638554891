"""The quantus_* metrics (metrics/quantus.py) against Quantus called directly on the same arrays.

Each agreement test calls the Quantus class itself, per sample, under the NumPy seed our metric
uses for that sample (``sample_seed``), with a plain ``x -> logits`` module written here that
fixes the sample's Poisson encoding, and compares per-sample scores. The model is the tiny
Poisson-coded SNN of basic_models (its encoding is keyed by sample id, so a wrong id would show).
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from basic_models import tiny_batch, tiny_vgg
from torch import nn

from bench.errors import BenchError
from bench.pipeline.services import direct_input
from bench.registry import METRICS

SEED = 5
REASON = "Quantus is not installed (pip install 'snn-xai-bench[quantus]')"


@pytest.fixture(scope="module")
def q():
    return pytest.importorskip("quantus", reason=REASON)


class OneSample(nn.Module):
    """What Quantus is given directly: the SNN with one sample's id on every row."""

    def __init__(self, model: nn.Module, sid: int):
        super().__init__()
        self.model, self.sid = model, sid
        self.eval()

    def forward(self, x):
        return self.model(x, sample_id=torch.full((len(x),), self.sid), seed=SEED)


def _maps(n: int) -> torch.Tensor:
    m = torch.rand(n, 16, 16, generator=torch.Generator().manual_seed(3)) ** 3
    return m / m.flatten(1).amax(1).view(-1, 1, 1)


@pytest.fixture(scope="module")
def setup():
    model, batch = tiny_vgg("snn"), tiny_batch(3)
    return model, batch, _maps(3)


def ours(name: str, setup, table=None, **kw):
    model, batch, maps = setup
    entry = METRICS.get(name)
    return entry.obj(direct_input(maps, batch, model=model, seed=SEED, **kw), entry.make_params(table or {}))


def direct(q, name: str, setup, run):
    """``run(i, x [1,C,H,W], y [1], a [1,1,H,W], model)`` per sample under our metric's seed."""
    from metrics._quantus import sample_seed

    model, batch, maps = setup
    x, y, a = batch.x.numpy(), batch.y.numpy(), maps.numpy()[:, None]
    out = []
    for i, sid in enumerate(batch.sample_id.tolist()):
        np.random.seed(sample_seed(SEED, sid, name))
        out.append(run(i, x[i:i + 1], y[i:i + 1], a[i:i + 1], OneSample(model, sid)))
    return torch.tensor(out, dtype=torch.float32)


PLAIN = dict(normalise=False, abs=False, disable_warnings=True)


def test_faithfulness_correlation_matches_quantus(q, setup):
    got = ours("quantus_faithfulness_correlation", setup, {"nr_runs": 6, "subset_size": 32})
    want = direct(q, "quantus_faithfulness_correlation", setup, lambda i, x, y, a, m: q.FaithfulnessCorrelation(
        nr_runs=6, subset_size=32, return_aggregate=False, **PLAIN)(model=m, x_batch=x, y_batch=y, a_batch=a)[0])
    assert torch.allclose(got.values, want, atol=1e-5), (got.values, want)
    assert not torch.isnan(got.values).any()


def test_mu_fidelity_is_quantus_faithfulness_correlation(q):
    # Bhatt et al.'s mu-fidelity is Quantus' FaithfulnessCorrelation; Quantus 0.6 has no other class
    assert not hasattr(q, "MuFidelity")
    assert "Bhatt" in q.FaithfulnessCorrelation.__doc__


def test_infidelity_matches_quantus(q, setup):
    got = ours("quantus_infidelity", setup, {"perturb_patch_sizes": [8]})
    want = direct(q, "quantus_infidelity", setup, lambda i, x, y, a, m: q.Infidelity(
        perturb_patch_sizes=[8], n_perturb_samples=1, return_aggregate=False, **PLAIN)(
        model=m, x_batch=x, y_batch=y, a_batch=a)[0])
    assert torch.allclose(got.values, want, rtol=1e-5), (got.values, want)


def test_sensitivity_n_is_faithfulness_correlation_per_subset_size(q, setup):
    sizes = [4, 64]
    got = ours("quantus_sensitivity_n", setup, {"subset_sizes": sizes, "nr_runs": 4})

    def run(i, x, y, a, m):  # in order of n, one seeded generator per sample
        return [q.FaithfulnessCorrelation(nr_runs=4, subset_size=n, return_aggregate=False, **PLAIN)(
            model=m, x_batch=x, y_batch=y, a_batch=a)[0] for n in sizes]

    want = direct(q, "quantus_sensitivity_n", setup, run)
    assert got.points == (4.0, 64.0)
    assert torch.allclose(got.curve, want, atol=1e-5), (got.curve, want)
    assert torch.allclose(got.values, want.nanmean(1), atol=1e-5)


def test_quantus_sensitivity_n_pools_over_the_batch(q, setup):
    """Why quantus_sensitivity_n does not call quantus.SensitivityN: that class correlates over
    the *samples of the batch* (one value per n), so no per-sample score equals it, and adding a
    neighbour changes every value."""
    model, batch, maps = setup
    x, y, a = batch.x.numpy(), batch.y.numpy(), maps.numpy()[:, None]
    m = OneSample(model, 100)  # one encoding for every row: only the pooling differs below

    def sens(n):
        return np.asarray(q.SensitivityN(features_in_step=64, n_max_percentage=0.5, return_aggregate=False, **PLAIN)(
            model=m, x_batch=x[:n], y_batch=y[:n], a_batch=a[:n]), dtype=float)

    two, three = sens(2), sens(3)
    assert two.shape == three.shape == (2,)  # one value per n for the batch, not one per sample
    assert not np.allclose(two, three)


def test_road_matches_quantus(q, setup):
    from metrics.quantus import _pixel_imputation

    pct = [20.0, 60.0]
    got = ours("quantus_road", setup, {"percentages": pct})

    def run(i, x, y, a, m):
        metric = q.ROAD(percentages=pct, perturb_func=_pixel_imputation, return_aggregate=False, **PLAIN)
        metric(model=m, x_batch=x, y_batch=y, a_batch=np.repeat(a, 3, axis=1))
        return [metric.evaluation_scores[p] for p in pct]

    want = direct(q, "quantus_road", setup, run)
    assert got.points == (0.2, 0.6)
    assert torch.equal(got.curve, want)


def test_road_without_noise_averages_to_quantus_batch_call(q, setup):
    # with no imputation noise nothing is random: Quantus' batch-mean per percentage is our
    # curve's mean over the samples
    from metrics.quantus import _pixel_imputation

    model, batch, maps = setup
    pct = [20.0, 60.0]
    got = ours("quantus_road", setup, {"percentages": pct, "noise": 0.0})
    metric = q.ROAD(percentages=pct, noise=0.0, perturb_func=_pixel_imputation, return_aggregate=False, **PLAIN)

    class Rows(nn.Module):  # each row keeps its own sample's encoding
        def forward(self, x):
            return model(x, sample_id=batch.sample_id, seed=SEED)

    metric(model=Rows().eval(), x_batch=batch.x.numpy(), y_batch=batch.y.numpy(),
           a_batch=np.repeat(maps.numpy()[:, None], 3, axis=1))
    assert np.allclose([metric.evaluation_scores[p] for p in pct], got.curve.mean(0).numpy())


def test_quantus_road_fails_on_rgb_without_pixel_indices(q, setup):
    # why quantus_road passes its own imputation: Quantus 0.6 indexes the pixel grid with
    # channel-wise feature indices on a 3-channel image
    model, batch, maps = setup
    metric = q.ROAD(percentages=[50.0], return_aggregate=False, **PLAIN)
    with pytest.raises(IndexError):
        metric(model=OneSample(model, 100), x_batch=batch.x[:1].numpy(), y_batch=batch.y[:1].numpy(),
               a_batch=maps[:1, None].numpy())


def _gradient_maps(model, x, sample_id, target):
    """Input-x-gradient for ``target``, ReLU and max-normalized (the post-processing)."""
    x = x.clone().requires_grad_(True)
    logits = model(x, sample_id=sample_id, seed=SEED)
    logits.gather(1, target.view(-1, 1)).sum().backward()
    m = (x.grad * x).sum(1).clamp_min(0)
    return (m / m.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)).detach()


def test_random_logit_matches_quantus(q, setup):
    model, batch, _ = setup
    maps = _gradient_maps(model, batch.x, batch.sample_id, batch.y)

    def explain(m, x):  # the method as the runner re-runs it: the run's target, the batch's ids
        return _gradient_maps(m, x, batch.sample_id, batch.y)

    got = METRICS.get("quantus_random_logit").obj(
        direct_input(maps, batch, model=model, explain=explain, seed=SEED), None)

    def run(i, x, y, a, m):
        sid = batch.sample_id[i:i + 1]

        def explain_func(model, inputs, targets, **kw):
            return _gradient_maps(tiny_vgg("snn"), torch.as_tensor(inputs), sid, torch.as_tensor(targets)).numpy()

        from metrics._quantus import sample_seed

        return q.RandomLogit(num_classes=4, seed=sample_seed(SEED, int(sid), "quantus_random_logit"),
                             return_aggregate=False, **PLAIN)(
            model=m, x_batch=x, y_batch=y, a_batch=a, explain_func=explain_func)[0]

    setup_maps = (model, batch, maps)
    want = direct(q, "quantus_random_logit", setup_maps, run)
    assert torch.allclose(got.values, want, atol=1e-4), (got.values, want)
    assert (got.values < 0.99).all()  # a class-sensitive map changes with the class


def test_perturbed_copies_share_the_sample_encoding(setup):
    from metrics._quantus import FixedIdModel

    model, batch, _ = setup
    fn = lambda x, sid: model(x, sample_id=sid, seed=SEED)
    x = batch.x[1:2].expand(4, -1, -1, -1)
    out = FixedIdModel(fn, 101)(x)
    assert torch.equal(out, out[:1].expand(4, -1))  # every copy: the same Poisson spikes
    assert torch.equal(out[:1], fn(batch.x[1:2], torch.tensor([101])))
    assert not torch.equal(out[:1], fn(batch.x[1:2], torch.tensor([7])))  # the id matters


def test_scores_repeat_and_leave_numpy_global_state_alone(q, setup):
    np.random.seed(11)
    before = np.random.get_state()[1].copy()
    a = ours("quantus_faithfulness_correlation", setup, {"nr_runs": 5, "subset_size": 16}).values
    assert np.array_equal(np.random.get_state()[1], before)
    b = ours("quantus_faithfulness_correlation", setup, {"nr_runs": 5, "subset_size": 16}).values
    assert torch.equal(a, b)


def test_constant_map_is_nan(q, setup):
    model, batch, maps = setup
    maps = maps.clone()
    maps[1] = 0.0  # a silent layer: Quantus asserts on it, here the sample is undefined
    entry = METRICS.get("quantus_infidelity")
    out = entry.obj(direct_input(maps, batch, model=model, seed=SEED), entry.make_params()).values
    assert math.isnan(out[1]) and not torch.isnan(out[[0, 2]]).any()


# -- project metrics that Quantus also computes ------------------------------------------------------
def test_sparseness_agrees_with_quantus(q, setup):
    _, batch, maps = setup
    ours_ = METRICS.get("sparseness").obj(direct_input(maps, batch), None).values
    a = maps.numpy()[:, None]
    theirs = q.Sparseness(return_aggregate=False, **PLAIN)(model=None, x_batch=batch.x.numpy(),
                                                           y_batch=batch.y.numpy(), a_batch=a)
    # Quantus adds 1e-7 to every pixel before the Gini index: a shift of order 1e-7 / mean
    assert np.allclose(ours_.numpy(), theirs, atol=1e-5)
    # an all-zero map: here NaN (no distribution); Quantus refuses the whole batch (assert)
    with pytest.raises(AssertionError):
        q.Sparseness(**PLAIN)(model=None, x_batch=batch.x.numpy(), y_batch=batch.y.numpy(), a_batch=0 * a)


def test_pointing_game_agrees_with_quantus_at_zero_tolerance(q):
    g = torch.Generator().manual_seed(4)
    n = 8
    maps = torch.rand(n, 16, 16, generator=g)  # continuous: a unique maximum per map
    mask = torch.zeros(n, 16, 16, dtype=torch.bool)
    for i in range(n):
        r, c = divmod(i * 29 % 200, 16)
        mask[i, r % 10:r % 10 + 6, c % 10:c % 10 + 6] = True
    batch = tiny_batch(n)
    batch = type(batch)(x=batch.x, y=batch.y, sample_id=batch.sample_id, mask=mask)
    entry = METRICS.get("pointing_game")
    ours_ = entry.obj(direct_input(maps, batch), entry.make_params({"tolerance": 0.0})).values
    theirs = q.PointingGame(return_aggregate=False, **PLAIN)(
        model=None, x_batch=batch.x.numpy(), y_batch=batch.y.numpy(), a_batch=maps.numpy()[:, None],
        s_batch=mask.numpy()[:, None].astype(float))
    assert 0 < ours_.sum() < n  # both hits and misses
    assert np.array_equal(ours_.numpy(), np.asarray(theirs, dtype=float))
    # they differ where the map has tied maxima (a constant map: Quantus counts a hit) and for an
    # empty mask (Quantus: a hit, here NaN): tests/test_quantus_traps.py


# -- packaging ----------------------------------------------------------------------------------------
def test_missing_quantus_is_a_one_line_error(monkeypatch):
    from metrics._quantus import quantus

    monkeypatch.setitem(sys.modules, "quantus", None)  # import quantus -> ImportError
    with pytest.raises(BenchError, match=r"pip install 'snn-xai-bench\[quantus\]'") as err:
        quantus()
    assert "\n" not in str(err.value)


def test_quantus_is_in_its_extra_and_in_test():
    import tomllib
    from pathlib import Path

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert any(r.startswith("quantus") for r in extras["quantus"])
    assert any(r.startswith("quantus") for r in extras["test"])


# -- end to end --------------------------------------------------------------------------------------
QUANTUS_METRICS = ("quantus_faithfulness_correlation", "quantus_road", "quantus_random_logit")


def test_quantus_metrics_on_a_tiny_snn_with_registered_methods(q):
    """The suite's three Quantus metrics on the tiny SNN, with maps and re-explanations of the
    registered methods (the runner's path without the runner): SNN Grad-CAM reads the logits, so
    its off-class map differs; SAM reads spikes only, so RandomLogit gives it the worst score, 1."""
    import dataclasses

    from basic_models import tiny_card

    from bench.explain import explain_batch

    model, card, batch = tiny_vgg("snn"), tiny_card("snn"), tiny_batch(2)
    table = {"quantus_faithfulness_correlation": {"nr_runs": 4, "subset_size": 32},
             "quantus_road": {"percentages": [50.0]}, "quantus_random_logit": None}
    got = {}
    for method in ("snn_gradcam", "sam"):
        def explain(m, x, method=method):
            return explain_batch(method, None, m, card, dataclasses.replace(batch, x=x), target=batch.y,
                                 seed=SEED).maps

        inp = direct_input(explain(model, batch.x), batch, model=model, explain=explain, seed=SEED)
        for name, params in table.items():
            entry = METRICS.get(name)
            got[method, name] = entry.obj(inp, entry.make_params(params)).values
    assert all(v.shape == (2,) and not torch.isnan(v).all() for v in got.values())
    assert (got["snn_gradcam", "quantus_random_logit"] < 0.99).all()
    assert torch.allclose(got["sam", "quantus_random_logit"], torch.ones(2))


@pytest.mark.slow
def test_quantus_suite_end_to_end(q, tmp_path):
    """The shipped suite bench/suites/quantus.toml, as a user runs it."""
    import pandas as pd

    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "bench", "run", "quantus", "--out", str(out), "--quiet", "--no-report"],
                   check=True, timeout=1200)
    rows = pd.read_csv(out / "results.csv")
    got = rows[rows.metric.isin(QUANTUS_METRICS) & rows.point.isna()]
    assert set(got.metric) == set(QUANTUS_METRICS)
    assert got.groupby(["metric", "method"]).sample_id.nunique().eq(16).all()
