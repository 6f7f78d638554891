"""ANN-to-SNN conversion: exact BN folding, percentile scales, and rate agreement with the ANN."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from bench.errors import BenchError
from bench.models import build_model, get_card
from bench.models.convert import _fold, activation_scales, convert


def _images(n, size=16, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _ann_with_bn_statistics():
    """A random vgg5 ANN whose BN running statistics are those of calibration images."""
    ann = build_model("vgg5_ann")
    for bn in ann.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.momentum = None  # cumulative average: one pass sets the exact batch statistics
            bn.reset_running_stats()
            with torch.no_grad():
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)
    with torch.no_grad():
        ann.train()(_images(64, seed=1))
    return ann.eval()


def test_batch_norm_folding_is_exact():
    ann = _ann_with_bn_statistics()
    x = _images(4)
    w, b = _fold(ann.convs[0], ann.norms[0])
    with torch.no_grad():
        assert torch.allclose(F.conv2d(x, w, b, padding=1), ann.norms[0](ann.convs[0](x)), atol=1e-5)


def test_activation_scales_are_percentiles():
    ann = _ann_with_bn_statistics()
    x = _images(8)
    top = activation_scales(ann, x, 100.0)
    mid = activation_scales(ann, x, 90.0)
    from bench.models import record

    with torch.no_grad(), record(ann, ann.layer_names()) as rec:
        ann(x)
    for k, a in rec.spikes.items():
        assert top[k] == pytest.approx(float(a.max()))
        assert mid[k] == pytest.approx(float(a.flatten().kthvalue(round(0.9 * a.numel())).values))
        assert 0 < mid[k] < top[k]


@pytest.mark.slow
def test_converted_snn_approaches_the_ann():
    ann = _ann_with_bn_statistics()
    card = dataclasses.replace(get_card("vgg5_snn_t8_conv"), T=96)
    snn = convert(ann, card, _images(64, seed=2))
    assert all(c.bias is not None for c in snn.convs) and snn.card.neuron.leak == 1.0
    x = _images(24, seed=3)
    with torch.no_grad():
        a, s = ann(x), snn(x)
    corr = torch.corrcoef(torch.stack([a.flatten(), s.flatten()]))[0, 1]
    agree = (a.argmax(1) == s.argmax(1)).float().mean()
    assert corr > 0.9 and agree >= 0.75, (float(corr), float(agree))
    short = convert(ann, dataclasses.replace(card, T=4), _images(64, seed=2))
    with torch.no_grad():
        err_short = (short(x) - a).abs().mean()
    assert (s - a).abs().mean() < err_short  # the rate code sharpens with more time steps


def test_conversion_rejects_wrong_sources():
    snn = build_model("vgg5_snn_t8")
    with pytest.raises(BenchError, match="cannot convert"):
        convert(snn, get_card("vgg5_snn_t8_conv"), _images(2))
