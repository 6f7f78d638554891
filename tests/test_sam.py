"""SAM: the three variants against brute-force evaluations of their definitions, the reference
note's worked example, and the "only neurons spiking now contribute" property."""

from __future__ import annotations

import math

import pytest
import torch

from methods.sam import spike_activation_map


def brute_force(spikes: torch.Tensor, gamma: float, variant: str) -> torch.Tensor:
    """Direct O(T^2) evaluation of each variant's definition, neuron by neuron.

    exclusive / inclusive: NCS[t] = sum over spike times t' < t (<= t) of exp(-gamma (t - t')).
    official: the reference code's loop, weight = sum_{p <= t} exp(-gamma * (t - S[p] * p)).
    Map: M[t] = sum_k NCS[t, k] * S[t, k].
    """
    T = spikes.shape[0]
    s = spikes.double()
    out = torch.zeros(T, *s.shape[1:2], *s.shape[3:], dtype=torch.float64)
    for t in range(T):
        weight = torch.zeros_like(s[0])
        for p in range(t + 1):
            if variant == "official":
                weight += torch.exp(-gamma * (t - s[p] * p))
            elif p < t or (variant == "inclusive" and p == t):
                weight += s[p] * math.exp(-gamma * (t - p))
        out[t] = (weight * s[t]).sum(1)
    return out


@pytest.mark.parametrize("variant", ["exclusive", "inclusive", "official"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.3])
def test_variants_equal_brute_force(variant: str, gamma: float) -> None:
    g = torch.Generator().manual_seed(7)
    spikes = (torch.rand(12, 3, 4, 5, 6, generator=g) < 0.35).float()
    fast = spike_activation_map(spikes, gamma, variant)
    assert fast.shape == (12, 3, 5, 6)
    torch.testing.assert_close(fast.double(), brute_force(spikes, gamma, variant), rtol=1e-5, atol=1e-5)


WORKED = {  # reference note, one neuron, gamma 0.5, spikes 1,0,1,1,0,0,1,1,1,0
    "inclusive": {0: 1.0000, 2: 1.3679, 3: 1.8297, 6: 1.4083, 8: 2.1246},
    "exclusive": {0: 0.0000, 2: 0.3679, 3: 0.8297, 6: 0.4083, 8: 1.1246},
    "official": {0: 1.0000, 2: 1.7358, 3: 2.0528, 6: 1.5576, 8: 2.1795},
}


@pytest.mark.parametrize("variant", sorted(WORKED))
def test_worked_example(variant: str) -> None:
    train = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 1, 0], dtype=torch.float32)
    m = spike_activation_map(train.view(10, 1, 1, 1, 1), 0.5, variant)[:, 0, 0, 0]
    for t, want in WORKED[variant].items():
        assert round(float(m[t]), 4) == pytest.approx(want, abs=1e-4), (variant, t)


@pytest.mark.parametrize("variant", ["exclusive", "inclusive", "official"])
def test_zero_where_nothing_spikes_now(variant: str) -> None:
    g = torch.Generator().manual_seed(3)
    spikes = (torch.rand(9, 2, 3, 4, 4, generator=g) < 0.5).float()
    m = spike_activation_map(spikes, 0.5, variant)
    silent_now = spikes.sum(2) == 0  # [T, B, H, W]: no channel fires at (t, i, j)
    assert silent_now.any() and (~silent_now).any()
    assert torch.all(m[silent_now] == 0)
    assert torch.all(m[~silent_now] > 0) if variant != "exclusive" else torch.all(m >= 0)


def test_batch_items_are_independent() -> None:
    g = torch.Generator().manual_seed(5)
    spikes = (torch.rand(6, 4, 2, 3, 3, generator=g) < 0.4).float()
    full = spike_activation_map(spikes)
    for b in range(4):
        torch.testing.assert_close(full[:, b], spike_activation_map(spikes[:, b:b + 1])[:, 0])


@pytest.mark.parametrize("variant", ["exclusive", "inclusive", "official"])
@pytest.mark.parametrize("block", [1, 3, 7])
def test_blocks_of_samples_are_bit_identical_to_one_pass(variant: str, block: int, monkeypatch) -> None:
    """The cache blocking (BLOCK_BYTES) runs the same operations per element: equal bits, any
    block size, a ragged last block included; and still equal to the definition."""
    import methods.sam as sam_mod

    g = torch.Generator().manual_seed(7)
    spikes = (torch.rand(9, 7, 5, 4, 3, generator=g) < 0.3).float()
    whole = spike_activation_map(spikes, 0.5, variant)   # 7 samples of 240 bytes: one block
    monkeypatch.setattr(sam_mod, "BLOCK_BYTES", block * 5 * 4 * 3 * 4)
    blocked = spike_activation_map(spikes, 0.5, variant)
    assert torch.equal(blocked, whole)
    torch.testing.assert_close(blocked.double(), brute_force(spikes, 0.5, variant), rtol=1e-5, atol=1e-5)


def test_no_gradients_and_bad_input() -> None:
    spikes = torch.ones(3, 1, 1, 2, 2, requires_grad=True)
    assert not spike_activation_map(spikes).requires_grad
    with pytest.raises(ValueError):
        spike_activation_map(torch.ones(3, 1, 2, 2))
    with pytest.raises(ValueError):
        spike_activation_map(torch.ones(3, 1, 1, 2, 2), variant="both")
