"""Known-answer tests on models whose attributions can be written down by hand."""

from __future__ import annotations

import functools

import torch
from basic_models import PixelLinear
from torch import nn

from bench.models.card import ModelCard
from bench.registry import METHODS
from methods.base import ExplainInput

#: ``logits [B, 4] = W flatten(x) + b`` on ``[B, 3, 6, 6]``; ``model.weight(k)`` is its input gradient
Linear = functools.partial(PixelLinear, (3, 6, 6), 4)


CARD = ModelCard(name="linear", kind="ann", arch="linear", dataset="none", num_classes=4, input_size=6)


def _inp(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> ExplainInput:
    return ExplainInput(model=model, card=CARD, layer="", x=x, target=target,
                        sample_id=torch.arange(len(x)), seed=0)


def _run(name: str, inp: ExplainInput, **params) -> torch.Tensor:
    entry = METHODS.get(name)
    with torch.enable_grad():
        return entry.obj(inp, entry.make_params(params))


def test_saliency_of_linear_model_is_its_weights() -> None:
    model = Linear()
    x = torch.randn(2, 3, 6, 6)
    target = torch.tensor([1, 3])
    for name in ("ann_saliency", "snn_saliency"):
        signed = _run(name, _inp(model, x, target), channel_reduce="sum")
        simonyan = _run(name, _inp(model, x, target))  # max over channels of |w|
        for b, k in enumerate(target.tolist()):
            torch.testing.assert_close(signed[b], model.weight(k).sum(0))
            torch.testing.assert_close(simonyan[b], model.weight(k).abs().amax(0))


def test_input_x_gradient_and_ig_of_linear_model() -> None:
    model = Linear(seed=1)
    x = torch.randn(3, 3, 6, 6)
    target = torch.tensor([0, 2, 2])
    ixg = _run("snn_input_x_gradient", _inp(model, x, target))
    ig = _run("ann_integrated_gradients", _inp(model, x, target), n_steps=8, baseline=0.5)
    for b, k in enumerate(target.tolist()):
        w = model.weight(k)
        torch.testing.assert_close(ixg[b], (x[b] * w).sum(0))
        # IG of a linear function is exact for any quadrature: (x - baseline) * w
        torch.testing.assert_close(ig[b], ((x[b] - 0.5) * w).sum(0), rtol=1e-4, atol=1e-5)


def test_occlusion_of_linear_model_is_the_pixel_contribution() -> None:
    model = Linear(seed=2)
    x = torch.randn(2, 3, 6, 6)
    target = torch.tensor([3, 0])
    occ = _run("snn_occlusion", _inp(model, x, target), window=1, stride=1, perturbations_per_eval=7)
    for b, k in enumerate(target.tolist()):
        # occluding pixel (i, j) with the baseline 0 drops the logit by sum_c x[c,i,j] w[c,i,j]
        torch.testing.assert_close(occ[b], (x[b] * model.weight(k)).sum(0), rtol=1e-4, atol=1e-5)
