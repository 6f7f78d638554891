"""explain_batch: compatibility checks, params/layer resolution, degenerate maps, the heatmap
cache and pass counting."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from basic_models import tiny_batch

from bench.cost import count_passes
from bench.errors import BenchError, ConfigError
from bench.explain import explain_batch
from bench.models.arch import VGG
from bench.models.card import NeuronParams
from bench.store.heatcache import HeatmapCache
from methods.postprocess import PostprocessConfig
from methods.sam import SamParams, spike_activation_map


def test_incompatible_method_and_model(tiny_snn, tiny_ann) -> None:
    snn, ann = tiny_snn, tiny_ann
    b = tiny_batch()
    with pytest.raises(BenchError, match="runs on snn models.*twin 'tiny_snn'"):
        explain_batch("sam", None, ann, ann.card, b, target=b.y)
    with pytest.raises(BenchError, match="runs on ann models"):
        explain_batch("ann_gradcam", None, snn, snn.card, b, target=b.y)
    with pytest.raises(BenchError, match="did you mean 'sam'"):
        explain_batch("sma", None, snn, snn.card, b, target=b.y)
    with pytest.raises(BenchError, match="no layer 'conv9'"):
        explain_batch("sam", None, snn, snn.card, b, target=b.y, layer="conv9")
    with pytest.raises(ConfigError):
        explain_batch("sam", {"gamma": "high"}, snn, snn.card, b, target=b.y)
    with pytest.raises(BenchError, match="target has 2 entries"):
        explain_batch("sam", None, snn, snn.card, b, target=b.y[:2])


def test_layer_resolution_and_sam_matches_functional_core(tiny_snn) -> None:
    from bench.models.record import record

    snn, b = tiny_snn, tiny_batch()
    with torch.no_grad(), record(snn, ["conv2", "conv3"]) as rec:
        snn(b.x, sample_id=b.sample_id, seed=0)
    post = PostprocessConfig(upsample=True)
    for layer_arg, params, want in [(None, None, "conv2"), (None, {"layer": "conv3"}, "conv3"),
                                    ("conv2", SamParams(layer="conv3"), "conv2")]:
        e = explain_batch("sam", params, snn, snn.card, b, target=b.y, post=post, layer=layer_arg)
        raw = spike_activation_map(rec.spikes[want])
        from methods.postprocess import postprocess

        torch.testing.assert_close(e.steps, postprocess(raw, 16, post))
        torch.testing.assert_close(e.maps, postprocess(raw.mean(0), 16, post))


def test_silent_layer_is_degenerate_not_nan(tiny_snn) -> None:
    card = dataclasses.replace(tiny_snn.card, neuron=NeuronParams(threshold=1e9))
    silent = VGG(card).eval()
    b = tiny_batch()
    for name in ("sam", "snn_gradcam"):
        e = explain_batch(name, None, silent, card, b, target=b.y)
        assert e.degenerate.all() and e.steps_degenerate.all()
        assert torch.equal(e.maps, torch.zeros_like(e.maps)) and torch.isfinite(e.steps).all()


def test_cache_round_trip_and_partial_hits(tiny_snn, tmp_path) -> None:
    snn, b = tiny_snn, tiny_batch(4)
    cache = HeatmapCache(tmp_path)
    ref = explain_batch("snn_gradcam", None, snn, snn.card, b, target=b.y)
    first = explain_batch("snn_gradcam", None, snn, snn.card, b.select(torch.tensor([1, 3])),
                          target=b.y[[1, 3]], cache=cache, model_key="ckpt")
    assert cache.misses == 2
    with count_passes(snn) as cost:
        full = explain_batch("snn_gradcam", None, snn, snn.card, b, target=b.y, cache=cache,
                             model_key="ckpt")
    assert cost.samples == 2 and cache.hits == 2  # only samples 0 and 2 were computed
    torch.testing.assert_close(full.steps, ref.steps, atol=1e-5, rtol=0)
    torch.testing.assert_close(first.maps, ref.maps[[1, 3]], atol=1e-5, rtol=0)
    with count_passes(snn) as cost:
        explain_batch("snn_gradcam", None, snn, snn.card, b, target=b.y, cache=cache, model_key="ckpt")
    assert cost.forwards == 0
    # another target (label-dependent method), another input or another model is a miss
    with count_passes(snn) as cost:
        explain_batch("snn_gradcam", None, snn, snn.card, b, target=(b.y + 1) % 4, cache=cache,
                      model_key="ckpt")
        explain_batch("snn_gradcam", None, snn, snn.card, dataclasses.replace(b, x=b.x + 0.1),
                      target=b.y, cache=cache, model_key="ckpt")
        explain_batch("snn_gradcam", None, snn, snn.card, b, target=b.y, cache=cache)
    assert cost.samples == 12


def test_pass_counts_of_integrated_gradients(tiny_snn) -> None:
    snn, b = tiny_snn, tiny_batch(3)
    with count_passes(snn) as cost:
        explain_batch("snn_integrated_gradients", {"n_steps": 5, "internal_batch_size": 6}, snn,
                      snn.card, b, target=b.y)
    # 15 path points in chunks of at most 6 samples (captum keeps whole steps per chunk)
    assert cost.samples == 15 and cost.forwards == cost.backwards >= 3
    with count_passes(snn) as cost:
        explain_batch("sam", None, snn, snn.card, b, target=b.y)
    assert cost.as_dict() == {"forwards": 1, "samples": 3, "backwards": 0}


def test_hooks_removed_after_an_error(tiny_snn) -> None:
    snn = tiny_snn
    with pytest.raises(RuntimeError), count_passes(snn):
        raise RuntimeError("boom")
    assert not snn._forward_hooks


def test_fully_connected_layer_is_rejected() -> None:
    import bench.models as models

    snn, ann = models.build_model("vgg11_snn_t30").eval(), models.build_model("vgg11_ann").eval()
    b = dataclasses.replace(tiny_batch(1), x=torch.randn(1, 3, 16, 16))
    for name, model in [("sam", snn), ("snn_gradcam", snn), ("ann_gradcam", ann)]:
        with pytest.raises(BenchError, match="'fc1' is not convolutional"):
            explain_batch(name, None, model, model.card, b, target=b.y, layer="fc1")
