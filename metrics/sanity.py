"""Cascading model-parameter randomization (Adebayo et al., Sanity Checks for Saliency Maps, 2018).

Stage s re-initializes the top s weight layers (Conv/Linear, found in forward order by one
hooked forward pass), cumulatively from the output down, and re-runs the method on that
randomized copy; its maps are compared with the original maps per sample.

Choices (stated, and parameters where they matter):
- Weights and biases are redrawn from PyTorch's default initializer U(-1/sqrt(fan_in),
  1/sqrt(fan_in)) ("default"), or from N(0, std of the trained tensor) ("match_scale", which keeps
  activation scales, so an SNN is less likely to fall silent). Batch-norm parameters and running
  statistics are left as trained.
- ``randomize_neurons``: the spiking layers that run after a randomized weight layer (up to the
  next weight layer) also get their threshold and leak multiplied by U(0.5, 1.5) (leak capped at 1).
  Otherwise neuron parameters stay as trained.
- Randomness is keyed by ``(seed, stage, layer)`` via :mod:`bench.seeding` on the CPU, so the
  randomized model is the same for every batch; the work happens on a deepcopy, the original
  model is untouched.
- Degenerate maps: where the original map is constant (e.g. all zero) both scores are NaN; where
  a randomized map is constant, that stage's Spearman is NaN (undefined) while SSIM stays defined.
  ``values`` = mean over stages of the defined per-stage scores (NaN if none); ``curve`` keeps
  every stage (points = number of layers randomized). Lower = the method depends on the model.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import weakref
from typing import Iterator, Literal

import torch
from torch import nn

from bench.errors import BenchError
from bench.registry import METRICS
from bench.seeding import sample_generator
from metrics._maps import is_constant
from metrics._ssim import spearman, ssim
from metrics.base import ScoreInput, Scores

WEIGHT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
NEURON_FIELDS = ("threshold", "leak")


@dataclasses.dataclass(frozen=True)
class RandomizationParams:
    """randomize_neurons: also perturb threshold/leak of the spiking layers of randomized layers.
    weight_init: "default" (PyTorch initializer) or "match_scale". max_stages: top layers to
    randomize, None = all."""

    randomize_neurons: bool = False
    weight_init: Literal["default", "match_scale"] = "default"
    max_stages: int | None = None

    def __post_init__(self) -> None:
        if self.max_stages is not None and self.max_stages < 1:
            raise ValueError(f"max_stages must be >= 1, got {self.max_stages}")


def _is_neuron(m: nn.Module) -> bool:
    holder = getattr(m, "neuron", None)
    if dataclasses.is_dataclass(holder) and all(hasattr(holder, f) for f in NEURON_FIELDS):
        return True
    return any(isinstance(getattr(m, f, None), (float, torch.Tensor)) for f in NEURON_FIELDS)


@contextlib.contextmanager
def _record_calls(model: nn.Module, calls: list[str]) -> Iterator[None]:
    """Record the names of weight and neuron modules in the order the forward pass calls them."""
    handles = []
    try:
        for name, m in model.named_modules():
            if isinstance(m, WEIGHT_LAYERS) or _is_neuron(m):
                handles.append(m.register_forward_pre_hook(lambda *_, n=name: calls.append(n)))
        yield
    finally:
        for h in handles:
            h.remove()


def cascade_layers(model: nn.Module, x: torch.Tensor, sample_id: torch.Tensor) -> list[tuple[str, list[str]]]:
    """``[(weight layer, [neuron modules after it]), ...]`` from the output layer down."""
    calls: list[str] = []
    with _record_calls(model, calls), torch.no_grad():
        model(x[:1], sample_id=sample_id[:1])
    modules = dict(model.named_modules())
    groups: list[tuple[str, list[str]]] = []
    for name in dict.fromkeys(calls):  # first call of each module, in forward order
        if isinstance(modules[name], WEIGHT_LAYERS):
            groups.append((name, []))
        elif groups:
            groups[-1][1].append(name)
    if not groups:
        raise BenchError("model_randomization found no Conv/Linear layer to randomize")
    return groups[::-1]


def _redraw(layer: nn.Module, gen: torch.Generator, init: str) -> None:
    fan_in = layer.weight[0].numel()
    for p in (layer.weight, layer.bias):
        if p is None:
            continue
        if init == "default":
            new = (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(fan_in)
        else:
            scale = p.detach().double().std() if p.numel() > 1 else p.detach().double().abs().max()
            new = torch.randn(p.shape, generator=gen, dtype=torch.float64) * scale.cpu()
        p.data.copy_(new.to(p))


def _perturb_neuron(m: nn.Module, gen: torch.Generator) -> None:
    factors = {f: 0.5 + float(torch.rand((), generator=gen)) for f in NEURON_FIELDS}
    holder = getattr(m, "neuron", None)
    if dataclasses.is_dataclass(holder):
        leak = min(1.0, holder.leak * factors["leak"])
        m.neuron = dataclasses.replace(holder, threshold=holder.threshold * factors["threshold"], leak=leak)
        return
    for f in NEURON_FIELDS:
        v = getattr(m, f, None)
        if isinstance(v, torch.Tensor):
            v.data.mul_(factors[f])
            if f == "leak":
                v.data.clamp_(max=1.0)
        elif isinstance(v, float):
            setattr(m, f, min(1.0, v * factors[f]) if f == "leak" else v * factors[f])


def randomized_maps(inp: ScoreInput, params: RandomizationParams) -> torch.Tensor:
    """``[S, B, H, W]`` maps of the method re-run after each cascading stage."""
    if inp.method_model is None or inp.explain_fn is None:
        raise BenchError("model_randomization needs the method's model and explain_fn")
    x, ids = inp.batch.x, inp.batch.sample_id
    model = copy.deepcopy(inp.method_model).eval()
    groups = cascade_layers(model, x, ids)[: params.max_stages]
    modules = dict(model.named_modules())
    out = []
    for stage, (layer, neurons) in enumerate(groups, 1):
        gen = sample_generator(inp.seed, stage, f"model_randomization/{layer}")
        _redraw(modules[layer], gen, params.weight_init)
        if params.randomize_neurons:
            for n in neurons:
                _perturb_neuron(modules[n], gen)
        out.append(inp.explain_fn(model, x).detach())
    return torch.stack(out)


# One-entry memo: both registered metrics below re-run the method on the same randomized models.
# The runner builds a new ScoreInput per metric, so the memo recognizes "the same explanation
# job" by the identity of the maps, images and model (weak references: nothing is kept alive),
# the explainer's code and captured objects, the params and the seed.
_memo: dict[str, object] = {}


def _job(inp: ScoreInput, params: RandomizationParams) -> tuple[list[weakref.ref], tuple]:
    fn = inp.explain_fn
    cells = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            cells.append(id(cell.cell_contents))
        except ValueError:  # an empty cell
            cells.append(None)
    refs = [weakref.ref(t) for t in (inp.maps, inp.batch.x, inp.method_model)]
    return refs, (getattr(fn, "__code__", fn), tuple(cells), params, inp.seed)


def _cached_randomized_maps(inp: ScoreInput, params: RandomizationParams) -> torch.Tensor:
    refs, key = _job(inp, params)
    old = _memo.get("refs")
    if old is not None and _memo.get("key") == key and all(a() is b() for a, b in zip(old, refs)):
        return _memo["maps"]  # type: ignore[return-value]
    maps = randomized_maps(inp, params)
    _memo.update(refs=refs, key=key, maps=maps)
    return maps


def _stage_scores(curve: torch.Tensor) -> Scores:
    """curve ``[B, S]`` -> Scores with values = mean over the defined stages."""
    points = tuple(float(s) for s in range(1, curve.shape[1] + 1))
    return Scores(values=torch.nanmean(curve, dim=1), curve=curve, points=points)


_META = dict(category="sanity", higher_is_better=False, needs=frozenset({"explainer"}), output="curve",
             per_timestep=False, scope="explanation", version="1",
             reference="Adebayo et al. 2018, Sanity Checks for Saliency Maps (NeurIPS)",
             params=RandomizationParams)


@METRICS.register(summary="Cascading randomization: Spearman rank correlation of |maps| per stage",
                  **_META)
def model_randomization(inp: ScoreInput, params: RandomizationParams) -> Scores:
    rand = _cached_randomized_maps(inp, params)
    orig = inp.maps.abs()
    curve = torch.stack([spearman(orig, r.abs()) for r in rand], dim=1).to(inp.maps.device)
    return _stage_scores(_nan_rows(curve, is_constant(inp.maps)))


@METRICS.register(summary="Cascading randomization: SSIM between original and randomized maps per stage",
                  **_META)
def model_randomization_ssim(inp: ScoreInput, params: RandomizationParams) -> Scores:
    rand = _cached_randomized_maps(inp, params)
    curve = torch.stack([ssim(inp.maps, r) for r in rand], dim=1).float()
    return _stage_scores(_nan_rows(curve, is_constant(inp.maps)))


def _nan_rows(curve: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """NaN out every stage of the samples whose original map is degenerate."""
    return torch.where(rows.to(curve.device).view(-1, 1), torch.full_like(curve, math.nan), curve)
