"""The clean-vs-attacked gallery's examples: what an attack-based metric returned, made into arrays.

An attack-based metric returns the attacked inputs it compared (``Scores.attacked``,
:class:`metrics.base.AttackedInputs`); for the run's first example samples the cell keeps them
with the method's maps of those inputs and the predictions of the model they were crafted on
(:func:`attacked_examples`), and writes them beside the example maps (:func:`attacked_arrays`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.data.base import Batch, denormalize
from bench.explain import Explanation
from bench.store import rundir
from metrics.base import AttackedInputs


@dataclasses.dataclass(frozen=True, eq=False)
class AttackedExamples:
    """The gallery's clean-vs-attacked pairs of one batch's example samples (n of them, E budgets).

    position / sample_id: ``[n]``. points: ``[E]`` budgets. maps: ``[E, n, H, W]`` the method's
    maps of the attacked inputs. image: ``[E, n, C, H, W]`` in [0, 1]. pred: ``[E, n]`` the
    method model's predictions for them."""

    position: np.ndarray
    sample_id: torch.Tensor
    points: np.ndarray
    maps: torch.Tensor
    image: torch.Tensor
    pred: torch.Tensor


def attacked_examples(model: nn.Module, explanation: Callable[[torch.Tensor], Explanation], batch: Batch,
                      positions: np.ndarray, k: int, found: AttackedInputs, seed: int,
                      mean: tuple[float, ...], std: tuple[float, ...]) -> AttackedExamples:
    """The pairs of ``batch``'s samples at run positions ``positions [B]`` below ``k``:
    ``explanation(x)`` explains an attacked input on ``model`` (the method's model, memoized)."""
    sel = torch.as_tensor(np.flatnonzero(positions < k), device=batch.x.device)
    full = [explanation(x) for x in found.inputs]
    with torch.no_grad():
        preds = [model(x, sample_id=batch.sample_id, seed=seed).argmax(1)[sel] for x in found.inputs]
    return AttackedExamples(
        position=positions[sel.cpu().numpy()], sample_id=batch.sample_id[sel],
        points=np.asarray(found.points, np.float64),
        maps=torch.stack([f.maps[sel] for f in full]),
        image=torch.stack([denormalize(x[sel], mean, std).clamp(0, 1) for x in found.inputs]),
        pred=torch.stack(preds))


def attacked_arrays(out: Path, method_model: str, adv: list[AttackedExamples],
                    written: dict[str, str]) -> dict[str, np.ndarray]:
    """The method npz's ``adv_*`` arrays (``adv_maps [E, n, H, W]``, ``adv_points [E]``), and
    ``examples/<method_model>/attacked.npz`` in run folder ``out`` (the attacked inputs and the
    predictions of the model they were crafted on; identical for every cell on that model; its
    digest goes into ``written``)."""
    f16 = lambda a: a.astype(np.float16)  # noqa: E731
    rel = f"examples/{method_model}/attacked.npz"
    written[rel] = rundir.write_examples(
        out / rel,
        {"position": np.concatenate([a.position for a in adv]),
         "sample_id": torch.cat([a.sample_id for a in adv]).cpu().numpy(), "points": adv[0].points,
         "image": f16(torch.cat([a.image for a in adv], 1).cpu().numpy()),
         "pred": torch.cat([a.pred for a in adv], 1).cpu().numpy().astype(np.int64)})
    # time-aggregated maps only: per-step stability is in the results rows, and per-step
    # attacked maps would triple the committed examples
    return {"adv_points": adv[0].points, "adv_maps": f16(torch.cat([a.maps for a in adv], 1).cpu().numpy())}
