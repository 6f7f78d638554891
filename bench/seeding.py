"""Seeding: one function to seed everything, and per-sample generators.

Every random step of the suite (Poisson encoding, random baselines, attack starts, noise
controls, bootstrap) draws from a generator keyed by ``(seed, sample_id, stage)``. A sample's
randomness therefore never depends on batch size, batch order, or which other methods ran.
"""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def derive_seed(seed: int, sample_id: int, stage: str) -> int:
    """A stable 63-bit integer derived from ``(seed, sample_id, stage)`` (blake2b)."""
    key = f"{int(seed)}|{int(sample_id)}|{stage}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)


def sample_generator(seed: int, sample_id: int, stage: str) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` for one sample and one random stage."""
    g = torch.Generator(device="cpu")
    g.manual_seed(derive_seed(seed, sample_id, stage))
    return g


def per_sample_rand(seed: int, sample_ids: torch.Tensor, stage: str, shape: tuple[int, ...],
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Uniform [0, 1) numbers of shape ``[B, *shape]``; row b depends only on sample_ids[b].

    Drawn on the CPU (so results are identical across devices), then moved to ``device``.
    """
    rows = [torch.rand(shape, generator=sample_generator(seed, int(s), stage)) for s in sample_ids.tolist()]
    out = torch.stack(rows) if rows else torch.empty((0, *shape))
    return out.to(device) if device is not None else out


def per_sample_randn(seed: int, sample_ids: torch.Tensor, stage: str, shape: tuple[int, ...],
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Standard normal numbers of shape ``[B, *shape]``, keyed per sample like :func:`per_sample_rand`."""
    rows = [torch.randn(shape, generator=sample_generator(seed, int(s), stage)) for s in sample_ids.tolist()]
    out = torch.stack(rows) if rows else torch.empty((0, *shape))
    return out.to(device) if device is not None else out
