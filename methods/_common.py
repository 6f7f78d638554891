"""Small helpers shared by the method modules (private: not a registered method).

Everything that calls the model goes through :func:`run_model`, so every method sees the same
per-sample encoding (``sample_id`` and ``seed`` are always passed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from bench.errors import BenchError
from methods.base import ExplainInput


def run_model(inp: ExplainInput) -> torch.Tensor:
    """``model(x, sample_id, seed) -> logits [B, K]`` for ``inp``'s samples."""
    return inp.model(inp.x, sample_id=inp.sample_id, seed=inp.seed)


@contextmanager
def record(model: torch.nn.Module, layers: list[str], *, grad: bool = False) -> Iterator[object]:
    """:func:`bench.models.record.record`, imported on use so that listing methods stays cheap."""
    from bench.models.record import record as _record

    with _record(model, layers, grad=grad) as rec:
        yield rec


def require_spatial(t: torch.Tensor, layer: str, dims: int = 5) -> torch.Tensor:
    """``t`` unchanged if it has ``dims`` dimensions (``[T, B, C, H, W]``); a fully connected
    layer (``[T, B, F]``) has no spatial map to explain."""
    if t.dim() != dims:
        raise BenchError(f"layer {layer!r} is not convolutional (activations {list(t.shape)}); "
                         f"choose a conv layer")
    return t


def target_score(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of each sample's target logit (samples are independent, so the
    gradient of the sum w.r.t. sample b's activations is that sample's own gradient)."""
    return logits.gather(1, target.view(-1, 1).to(logits.device)).sum()


def reduce_channels(attr: torch.Tensor, how: str) -> torch.Tensor:
    """``[B, C, H, W]`` input attributions -> ``[B, H, W]``.

    "sum" keeps the sign and the completeness of IG/input x gradient; "mean" is the same up
    to 1/C; "max_abs" is Simonyan et al.'s saliency (max over channels of |gradient|).
    """
    if how == "sum":
        return attr.sum(1)
    if how == "mean":
        return attr.mean(1)
    if how == "max_abs":
        return attr.abs().amax(1)
    raise ValueError(f"unknown channel reduction {how!r}")


def layer_activations_and_grads(inp: ExplainInput) -> tuple[torch.Tensor, torch.Tensor]:
    """``inp.layer``'s outputs and ``d (target logit) / d outputs``, both ``[T, B, C, H, W]``.

    With ``grad=True`` the recorded tensor is the one the next layer consumes, so
    ``torch.autograd.grad`` reaches it by BPTT through the surrogate, and no ``.grad`` is
    accumulated on the model's parameters.
    """
    with torch.enable_grad(), record(inp.model, [inp.layer], grad=True) as rec:
        score = target_score(run_model(inp), inp.target)
        acts = rec.spikes[inp.layer]
        (grads,) = torch.autograd.grad(score, require_spatial(acts, inp.layer))
    return acts.detach(), grads.detach()
