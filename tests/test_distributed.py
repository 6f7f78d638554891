"""``snnxai train --nproc N``: data-parallel training (DDP, DistributedSampler, gloo on CPU).

Two processes with the card's batch read as the global batch (16 each of 32) must follow the
same loss curve as one process on the whole batch: the same samples per step, gradients
averaged by DDP. Tolerance: 1e-5 absolute per step, the float reduction order of a 2-way
gradient average over ~60 steps (measured differences are ~1e-7). A deterministic model
without batch norm (``SmallConvNet``) so the curves can match by construction.
"""

from __future__ import annotations

import functools

import pytest
import torch
from basic_models import SmallConvNet

from bench.errors import BenchError
from bench.models.card import TrainParams
from bench.models.distributed import fit_ddp, per_rank_batch

TP = TrainParams(epochs=3, batch_size=32, lr=0.2, n_train=320, weight_decay=1e-4)
BUILD = functools.partial(SmallConvNet, 3, 8, 4, 2)


def data(n: int = 320):
    """``n`` 3x8x8 images whose class is the signs of their first two channels' means (2 bits:
    4 classes; a conv + spatial mean can learn it, so the loss falls)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 8, 8, generator=g) + torch.randn(n, 3, 1, 1, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() * 2 + (x[:, 1].mean((1, 2)) > 0).long()
    return x, y, torch.arange(n)


def test_batch_must_split_over_the_processes():
    assert per_rank_batch(TP, 2) == 16 and per_rank_batch(TP, 1) == 32
    with pytest.raises(BenchError, match="does not split over 3 processes"):
        per_rank_batch(TP, 3)
    with pytest.raises(BenchError, match="--nproc must be >= 1"):
        per_rank_batch(TP, 0)


@pytest.mark.slow
def test_two_gloo_processes_follow_the_one_process_loss_curve():
    one = fit_ddp(BUILD, TP, data(), nproc=1, seed=3, threads=1)
    two = fit_ddp(BUILD, TP, data(), nproc=2, seed=3, threads=1)
    assert len(one.step_losses) == len(two.step_losses) == 3 * 10
    diff = (torch.tensor(one.step_losses) - torch.tensor(two.step_losses)).abs().max()
    assert diff < 1e-5, diff
    assert one.history[-1]["train_loss"] < one.history[0]["train_loss"] - 0.02   # it learns: not flat
    assert [h["train_loss"] for h in one.history] == pytest.approx([h["train_loss"] for h in two.history], abs=1e-4)
    for k, v in one.state.items():
        assert torch.allclose(v, two.state[k], atol=1e-4), k
