"""Plumbing between a :class:`~metrics.base.ScoreInput` and a Quantus metric (:mod:`metrics.quantus`).

Quantus (Hedstroem et al., JMLR 2023) evaluates numpy batches against a torch module that maps
``x -> logits``. Three things make its numbers usable here:

* **A fixed encoding per sample.** Quantus sees :class:`FixedIdModel`: a parameter-free module whose
  forward is ``inp.model_fn(x, sample_id)`` with the sample's own id repeated for every row
  Quantus feeds it, so every perturbed copy of a Poisson-coded sample sees the same encoding
  seed as the clean one (the score measures the perturbation, not encoding noise).
* **One Quantus call per sample.** Quantus draws from NumPy's global generator in batch order
  (random subsets, imputation noise, off-class labels), so a batched call would make a sample's
  score depend on its neighbours. Each sample is evaluated alone under a NumPy seed derived from
  (run seed, sample id, metric) (:func:`sample_seed`), with the global generator restored after.
* **No second post-processing.** Maps arrive post-processed in [0, 1]; Quantus' ``normalise``
  and ``abs`` are switched off (the project's post-processing is the one place for them).

Quantus asserts that an attribution is not constant (all zero, all one, one value); such a map
(a silent SNN layer) scores NaN here instead of raising, checked before Quantus is called.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.errors import BenchError
from bench.seeding import derive_seed
from metrics.base import ModelFn, ScoreInput

INSTALL = "pip install 'snn-xai-bench[quantus]'"


def quantus() -> types.ModuleType:
    """The ``quantus`` module, or a one-line :class:`BenchError` naming the extra to install."""
    try:
        import quantus as q
    except ImportError:
        raise BenchError(f"the quantus_* metrics need the Quantus library: {INSTALL}") from None
    return q


def sample_seed(seed: int, sample_id: int, metric: str) -> int:
    """The NumPy seed of one sample's Quantus call (``np.random.seed`` takes 32 bits)."""
    return derive_seed(seed, int(sample_id), f"quantus:{metric}") % 2**32


@contextlib.contextmanager
def numpy_seeded(seed: int) -> Iterator[None]:
    """Seed NumPy's global generator (the one Quantus draws from) and restore it afterwards,
    so nothing else in the process sees a changed stream."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            # Quantus' parameterisation notes and "perturbation caused no change" warnings,
            # and scipy's constant-input warning (its NaN is the answer we keep)
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(state)


class FixedIdModel(nn.Module):
    """``x [N, C, H, W] -> logits [N, K]`` of one sample: ``model_fn`` with that sample's id for
    every row, so the SNN's encoding is the same for all of Quantus' perturbed copies."""

    def __init__(self, model_fn: ModelFn, sample_id: int):
        super().__init__()
        self.model_fn = model_fn
        self.sample_id = int(sample_id)
        self.eval()  # Quantus refuses a module in training mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sid = torch.full((x.shape[0],), self.sample_id, dtype=torch.long, device=x.device)
        return self.model_fn(x.float(), sid)


def constant(maps: np.ndarray) -> np.ndarray:
    """``[B]`` True where a map holds one value (Quantus' attribution asserts refuse it)."""
    flat = maps.reshape(maps.shape[0], -1)
    return flat.max(axis=1) == flat.min(axis=1)


@dataclasses.dataclass(frozen=True)
class Arrays:
    """The batch as Quantus takes it: ``x [B, C, H, W]`` float32, ``y [B]`` int, maps as
    ``a [B, 1, H, W]`` float32, sample ids, and the torch device."""

    x: np.ndarray
    y: np.ndarray
    a: np.ndarray
    sample_id: np.ndarray
    device: str

    @staticmethod
    def of(inp: ScoreInput) -> Arrays:
        b = inp.batch
        return Arrays(x=b.x.detach().float().cpu().numpy(), y=b.y.detach().cpu().numpy().astype(np.int64),
                      a=inp.maps.detach().float().cpu().numpy()[:, None],
                      sample_id=b.sample_id.detach().cpu().numpy(), device=str(b.x.device))


#: one sample's Quantus call: (row index, the sample's seed) -> Quantus' list of results (length 1)
SampleCall = Callable[[int, int], list[Any]]


def per_sample(inp: ScoreInput, metric: str, call: SampleCall) -> list[Any]:
    """``call(i, seed)`` for each sample under its seeded NumPy generator; None for a constant map."""
    maps = inp.maps.detach().cpu().numpy()
    dead = constant(maps)
    out: list[Any] = []
    for i, sid in enumerate(inp.batch.sample_id.tolist()):
        if dead[i]:
            out.append(None)
            continue
        s = sample_seed(inp.seed, sid, metric)
        with numpy_seeded(s):
            res = call(i, s)
        out.append(res[0] if isinstance(res, (list, tuple, np.ndarray)) else res)
    return out


def require_model(inp: ScoreInput, metric: str) -> ModelFn:
    if inp.model_fn is None:
        raise BenchError(f"{metric} needs the probed model (ScoreInput.model_fn); see bench.pipeline.services")
    return inp.model_fn


# -- RandomLogit: the method re-run for another class ---------------------------------------------
@dataclasses.dataclass(frozen=True)
class ShiftLogits:
    """A derivation (:class:`metrics.base.Derivation`): the model with its logits rotated per
    sample, ``logits'[:, c] = logits[:, (c + k) mod K]`` with ``k`` from ``shifts`` (pairs
    ``(sample_id, k)``; other ids unchanged). Explaining class ``t`` on it explains class
    ``t + k`` of the model, so the method under evaluation is re-run for another class through
    ``inp.explain`` (whose target is the run's) without a change of its interface."""

    shifts: tuple[tuple[int, int], ...]

    def build(self, model: nn.Module, x: torch.Tensor, sample_id: torch.Tensor, seed: int) -> nn.Module:
        table = dict(self.shifts)
        batch_ids = sample_id.detach().clone()
        shifted = copy.deepcopy(model)  # never the model itself: the derivation contract
        inner = shifted.forward

        def forward(x: torch.Tensor, *args: Any, sample_id: torch.Tensor | None = None, **kw: Any) -> torch.Tensor:
            logits = inner(x, *args, sample_id=sample_id, **kw)
            ids = sample_id
            if ids is None and logits.shape[0] == batch_ids.shape[0]:
                ids = batch_ids  # a direct explain calling model(x) on the batch's rows, in order
            if ids is None:
                raise BenchError("ShiftLogits needs the sample ids of the rows it shifts")
            k = torch.tensor([table.get(int(s), 0) for s in ids.reshape(-1).tolist()], device=logits.device)
            idx = (torch.arange(logits.shape[1], device=logits.device)[None, :] + k[:, None]) % logits.shape[1]
            return logits.gather(1, idx)

        # an instance attribute: the module tree (layer names the methods hook) stays the model's
        shifted.forward = forward  # type: ignore[method-assign]
        return shifted
