"""SNN Grad-CAM's two aggregate forms against their formulas, on hooked spikes and autograd."""

from __future__ import annotations

import pytest
import torch
from basic_models import tiny_batch, tiny_vgg

from bench.models.record import record
from bench.registry import METHODS
from methods.base import ExplainInput


def _acts_grads(model, b, layer):
    with torch.enable_grad(), record(model, [layer], grad=True) as rec:
        logits = model(b.x, sample_id=b.sample_id, seed=3)
        A = rec.spikes[layer]
        (G,) = torch.autograd.grad(logits.gather(1, b.y.view(-1, 1)).sum(), A)
    return A.detach().double(), G.double()


def _run(aggregate: str | None, b, layer="conv2"):
    model = tiny_vgg("snn")
    inp = ExplainInput(model, model.card, layer, b.x, b.y, b.sample_id, 3)
    entry = METHODS.get("snn_gradcam")
    return entry.obj(inp, entry.make_params({} if aggregate is None else {"aggregate": aggregate})).double()


def test_relu_then_mean_is_the_default_and_equals_per_step_relu() -> None:
    b = tiny_batch(2)
    A, G = _acts_grads(tiny_vgg("snn"), b, "conv2")
    Z = A.shape[-1] * A.shape[-2]
    alpha = G.sum((0, -2, -1)) / Z  # Eq. 1: [B, C], summed over t as the code does
    want = torch.relu(torch.einsum("bc,tbchw->tbhw", alpha, A))
    got = _run(None, b)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_run("relu_then_mean", b), got)


def test_mean_then_relu_equals_eq_1_2_as_printed() -> None:
    b = tiny_batch(2)
    A, G = _acts_grads(tiny_vgg("snn"), b, "conv2")
    T, Z = A.shape[0], A.shape[-1] * A.shape[-2]
    alpha = G.sum((0, -2, -1)) / Z
    want = torch.relu(torch.einsum("bc,bchw->bhw", alpha, A.sum(0) / T))  # ReLU(sum_k alpha_k mean_t A)
    got = _run("mean_then_relu", b)
    assert got.shape == A.shape[:2] + A.shape[3:]
    torch.testing.assert_close(got.mean(0), want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(_run("relu_then_mean", b).mean(0), want), "the two forms differ here"


def test_unknown_aggregate_is_refused() -> None:
    with pytest.raises(Exception, match="aggregate"):
        METHODS.get("snn_gradcam").make_params({"aggregate": "max"})
