"""Baselines' known answers, and the sample-id bookkeeping of the captum-based methods."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.models.card import ModelCard
from bench.registry import METHODS
from bench.seeding import per_sample_rand
from methods.base import ExplainInput
from methods.postprocess import degenerate

CARD = ModelCard(name="none", kind="snn", arch="x", dataset="x", num_classes=2, input_size=8)


def _inp(x: torch.Tensor, model: nn.Module | None = None, ids=None, seed: int = 0) -> ExplainInput:
    ids = torch.arange(len(x)) if ids is None else torch.as_tensor(ids)
    return ExplainInput(model=model or nn.Identity(), card=CARD, layer="", x=x,
                        target=torch.zeros(len(x), dtype=torch.long), sample_id=ids, seed=seed)


def _run(name: str, inp: ExplainInput, **params) -> torch.Tensor:
    entry = METHODS.get(name)
    with torch.enable_grad():
        return entry.obj(inp, entry.make_params(params))


def test_random_is_per_sample_seeded() -> None:
    x = torch.zeros(3, 3, 8, 8)
    m = _run("random", _inp(x, ids=[5, 9, 5], seed=2))
    torch.testing.assert_close(m, per_sample_rand(2, torch.tensor([5, 9, 5]), "method.random", (8, 8)))
    assert torch.equal(m[0], m[2]) and not torch.equal(m[0], m[1])
    assert not torch.equal(m[0], _run("random", _inp(x[:1], ids=[5], seed=3))[0])
    assert _run("random", _inp(x), resolution=4).shape == (3, 4, 4)


def test_center_prior() -> None:
    m = _run("center", _inp(torch.zeros(2, 3, 9, 9)), sigma=0.2)
    assert m.shape == (2, 9, 9) and m[0].argmax() == 4 * 9 + 4 and m[0, 4, 4] == 1
    torch.testing.assert_close(m[0], m[0].T)
    torch.testing.assert_close(m[0], m[0].flip(0))
    torch.testing.assert_close(m[0, 4, 4 + 2], torch.exp(torch.tensor(-4 / (2 * 1.8 ** 2))))


def test_edge_is_the_sobel_magnitude() -> None:
    x = torch.zeros(1, 3, 8, 8)
    x[..., 4:] = 1.0  # a vertical step between columns 3 and 4
    m = _run("edge", _inp(x))[0]
    assert torch.all(m[:, :3] == 0) and torch.all(m[:, 5:] == 0)
    torch.testing.assert_close(m[:, 3], torch.full((8,), 4.0 * 3))  # |gx| = 4 per channel
    flat = _run("edge", _inp(torch.full((1, 3, 8, 8), 0.7)))
    assert flat.abs().max() < 1e-5 and degenerate(flat).item()  # a flat image has no edge


class IdScaled(nn.Module):
    """``logit_k = (1 + sample_id) * w_k . x``: a wrong id on an expanded copy changes the answer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 8 * 8, 2, bias=False)

    def forward(self, x, sample_id=None, seed=0):
        return self.fc(x.flatten(1)) * (1.0 + sample_id.to(x.dtype))[:, None]


@pytest.mark.parametrize("name, params", [
    ("snn_saliency", {"channel_reduce": "sum"}),
    ("snn_integrated_gradients", {"n_steps": 6, "internal_batch_size": 8}),
    ("snn_integrated_gradients", {"n_steps": 6, "internal_batch_size": 0}),
    ("snn_occlusion", {"window": 1, "stride": 1, "perturbations_per_eval": 5}),
])
def test_expanded_copies_keep_their_sample_id(name: str, params: dict) -> None:
    model, ids = IdScaled(), torch.tensor([0, 3, 7])
    x = torch.randn(3, 3, 8, 8)
    m = _run(name, _inp(x, model, ids), **params)
    w = model.fc.weight[0].detach().view(3, 8, 8)
    for b, sid in enumerate(ids.tolist()):
        per_pixel = w.sum(0) if name == "snn_saliency" else (x[b] * w).sum(0)
        torch.testing.assert_close(m[b], (1 + sid) * per_pixel, rtol=1e-4, atol=1e-5)
