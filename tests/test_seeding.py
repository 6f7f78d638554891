"""Per-sample generators keyed by (seed, sample_id, stage)."""

import torch

from bench.seeding import derive_seed, per_sample_rand, per_sample_randn, sample_generator, seed_everything


def test_derive_seed_stable_and_distinct():
    assert derive_seed(0, 5, "encode") == derive_seed(0, 5, "encode")
    keys = {derive_seed(s, i, st) for s in (0, 1) for i in range(50) for st in ("encode", "random")}
    assert len(keys) == 200
    # Pinned: changing the derivation changes every Poisson encoding and random baseline.
    assert derive_seed(0, 0, "encode") == 8008525219725037880


def test_generator_reproducible():
    a = torch.rand(5, generator=sample_generator(1, 2, "x"))
    b = torch.rand(5, generator=sample_generator(1, 2, "x"))
    c = torch.rand(5, generator=sample_generator(1, 3, "x"))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_rows_independent_of_batch_composition():
    ids = torch.tensor([7, 3, 9])
    batch = per_sample_rand(0, ids, "encode", (2, 3))
    alone = per_sample_rand(0, torch.tensor([3]), "encode", (2, 3))
    assert batch.shape == (3, 2, 3)
    assert torch.equal(batch[1], alone[0])
    repeated = per_sample_rand(0, torch.tensor([3, 3]), "encode", (4,))
    assert torch.equal(repeated[0], repeated[1])
    assert per_sample_randn(0, ids, "noise", (4,)).shape == (3, 4)


def test_seed_everything():
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))
