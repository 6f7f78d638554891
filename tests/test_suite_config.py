"""Suites: shipped TOML files load into typed dataclasses; overrides are type-checked; bad
names fail with a one-line "did you mean"; the default suite's config hash is pinned."""

from __future__ import annotations

import dataclasses

import pytest

from bench.errors import BenchError
from bench.registry import METHODS, METRICS
from bench.suite import Suite, load_suite, suite_names

#: The config hash of bench/suites/default.toml. It names the run directory (together with the
#: method/metric/model versions), so it must change only on purpose. If you changed the default
#: suite (or a default of a params dataclass it uses) deliberately, update this value to the
#: one the failing assertion prints, and say so in the commit message.
DEFAULT_HASH = "ff4d82baba7d"


def test_shipped_suites_load():
    assert {"default", "smoke", "robustness"} <= set(suite_names())
    for name in suite_names():
        s = load_suite(name)
        assert isinstance(s, Suite) and s.run.name == name and s.models and s.methods and s.metrics


def test_default_suite_hash_is_pinned():
    assert load_suite("default").config_hash() == DEFAULT_HASH


def test_default_suite_covers_every_method_and_the_metric_families():
    s = load_suite("default")
    assert set(s.methods) == set(METHODS.names())
    cats = {METRICS.get(k).spec.category for k in s.metrics}
    assert {"localization", "faithfulness", "sanity", "complexity", "robustness"} <= cats
    assert any(METRICS.get(k).spec.per_timestep for k in s.metrics)


def test_robustness_suite_measures_the_papers_claim_with_strong_attacks():
    """Every SNN of the zoo, SAM vs Grad-CAM on the ANN twin, all stability metrics and the full
    audit, PGD-10 with EOT-8 (the metric defaults) on the default epsilon grid."""
    s = load_suite("robustness")
    assert {"sam", "ann_gradcam"} <= set(s.methods)
    stab = {k for k in METRICS.names() if METRICS.get(k).spec.attacked}
    audit = {"adversarial_accuracy", "attack_success_whitebox", "attack_success_transfer",
             "attack_success_noise", "attack_zero_gradient"}
    assert len(stab) == 5 and stab | audit <= set(s.metrics)
    for k in stab | audit - {"attack_success_noise"}:
        assert s.metrics[k].eot == 8 and (k == "attack_zero_gradient" or s.metrics[k].steps == 10), k
    assert "vgg5_ann" in s.models                          # SNN -> ANN transfer, ANN accuracy


def test_params_are_the_registered_dataclasses():
    s = load_suite("default")
    for name, params in s.methods.items():
        cls = METHODS.get(name).params_cls
        assert (params is None) if cls is None else isinstance(params, cls)
    for name, params in s.metrics.items():
        cls = METRICS.get(name).params_cls
        assert (params is None) if cls is None else isinstance(params, cls)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.run.seed = 1  # type: ignore[misc]


def test_overrides_are_type_checked_and_change_the_hash():
    base = load_suite("smoke")
    s = load_suite("smoke", ["methods.sam.gamma=0.25", "run.n_samples=4", "run.device=cuda"])
    assert s.methods["sam"].gamma == 0.25 and s.run.n_samples == 4 and s.run.device == "cuda"
    assert s.config_hash() != base.config_hash()
    # where the caches live does not change any result, so it is not hashed
    assert load_suite("smoke", ['run.cache_dir="/tmp/x"']).config_hash() == base.config_hash()
    with pytest.raises(BenchError, match="gamma"):
        load_suite("smoke", ["methods.sam.gamma=fast"])
    with pytest.raises(BenchError, match="device"):
        load_suite("smoke", ["run.device=tpu"])
    with pytest.raises(BenchError, match="key=value"):
        load_suite("smoke", ["run.seed"])


@pytest.mark.parametrize("override, message", [
    ("methods.sma={}", "did you mean 'sam'"),
    ("metrics.pointing_gme={}", "did you mean 'pointing_game'"),
    ('models=["vgg5_snn_t9"]', "did you mean"),
    ('data.dataset="shape"', "did you mean 'shapes'"),
    ("methods.sam.gama=1", "did you mean 'gamma'"),
    ("reprot.n_boot=5", "did you mean 'report'"),
    ("run.batch_size=0", "batch_size"),
    ("limits.deletio=3", "did you mean 'deletion'"),
    ("limits.deletion=0", ">= 1"),
    ('models=["vgg5_ann", "vgg5_ann"]', "twice"),
])
def test_bad_names_and_values_fail_in_one_line(override, message):
    with pytest.raises(BenchError, match=message) as exc:
        load_suite("smoke", [override])
    assert "\n" not in str(exc.value)


def test_unknown_suite_and_paths(tmp_path):
    with pytest.raises(BenchError, match="did you mean 'smoke'"):
        load_suite("smok")
    with pytest.raises(BenchError, match="not found"):
        load_suite(tmp_path / "missing.toml")
    p = tmp_path / "mine.toml"
    p.write_text('models = ["vgg5_snn_t8"]\n[methods.random]\n[metrics.sparseness]\n')
    s = load_suite(p)
    assert s.run.name == "mine" and list(s.methods) == ["random"] and s.metrics == {"sparseness": None}
    p.write_text('models = ["vgg5_snn_t8"]\n[methods.random]\n')
    with pytest.raises(BenchError, match="metrics"):
        load_suite(p)
