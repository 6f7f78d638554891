"""The one entry point the runner calls to explain a batch: :func:`explain_batch`.

It looks the method up, checks it fits the model, resolves params and layer, runs the method
(or reads its raw maps from the heatmap cache), and post-processes once for every method:
per-step maps for temporal methods plus the time-aggregated single-map view.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from bench.data.base import Batch
from bench.errors import BenchError
from bench.models.card import ModelCard
from bench.registry import METHODS, Entry
from bench.store import state_digest, tensor_digest
from bench.store.heatcache import HeatmapCache
from methods.base import ExplainInput
from methods.postprocess import PostprocessConfig, is_degenerate_after_policy, postprocess, reduce_time


@dataclasses.dataclass(frozen=True)
class Explanation:
    """maps: ``[B, H, W]`` in [0, 1] (time-aggregated for temporal methods).
    steps: ``[T, B, H, W]`` in [0, 1] per time step (temporal methods), else None.
    degenerate: ``[B]`` bool (the map was all-zero/constant and is all zeros here).
    steps_degenerate: ``[T, B]`` bool, or None."""

    maps: torch.Tensor
    steps: torch.Tensor | None
    degenerate: torch.Tensor
    steps_degenerate: torch.Tensor | None


def check_compatible(entry: Entry, card: ModelCard) -> None:
    """Raise :class:`BenchError` when ``entry``'s method cannot run on the model of ``card``."""
    kind = entry.spec.model_kind
    if kind != "any" and kind != card.kind:
        hint = f"; run it on the twin {card.twin!r}" if card.twin else ""
        raise BenchError(f"method {entry.name!r} runs on {kind} models, but {card.name!r} is an "
                         f"{card.kind}{hint}")


def resolve_params(entry: Entry, params: Any) -> Any:
    """None -> defaults; a dict -> type-checked params; an instance of the params class as is."""
    cls = entry.params_cls
    if params is None or isinstance(params, dict):
        return entry.make_params(params)
    if cls is None or not isinstance(params, cls):
        raise BenchError(f"method {entry.name!r} expects params of type "
                         f"{getattr(cls, '__name__', None)}, got {type(params).__name__}")
    return params


def uses_layer(params: Any) -> bool:
    """Whether a method targets a layer (its params have a ``layer`` field)."""
    return params is not None and any(f.name == "layer" for f in dataclasses.fields(params))


def resolve_layer(params: Any, model: nn.Module, card: ModelCard, layer: str | None) -> str:
    """The explicit ``layer``, else ``params.layer``, else the card's default; "" if unused."""
    if not uses_layer(params):
        return ""
    name = layer or params.layer or (card.default_layer if card.target_layers else None)
    if not name:
        raise BenchError(f"no layer given and model {card.name!r} names no default target layer")
    known = list(model.layer_names()) if hasattr(model, "layer_names") else []
    if known and name not in known:
        raise BenchError(f"model {card.name!r} has no layer {name!r} (layers: {', '.join(known)})")
    return name


def _run_method(entry: Entry, inp: ExplainInput, params: Any) -> torch.Tensor:
    """Raw maps ``[B, h, w]`` / ``[T, B, h, w]`` (detached), with the shape contract checked."""
    grad_mode = torch.enable_grad() if entry.spec.needs_grad else torch.no_grad()
    with grad_mode:
        raw = entry.obj(inp, params)
    B = inp.x.shape[0]
    want = 4 if entry.spec.temporal else 3
    if raw.dim() != want or raw.shape[want - 3] != B:
        raise RuntimeError(f"method {entry.name!r} returned shape {tuple(raw.shape)}; expected "
                           f"{'[T, B, h, w]' if want == 4 else '[B, h, w]'} with B={B}")
    return raw.detach()


def _cache_keys(entry: Entry, params: Any, layer: str, batch: Batch, target: torch.Tensor,
                seed: int, model_key: str) -> list[str]:
    from bench.config import to_plain

    common = {"model": model_key, "method": entry.name, "version": entry.spec.version,
              "params": to_plain(params), "layer": layer, "seed": int(seed)}
    keys = []
    for b in range(len(batch)):
        parts = {**common, "sample_id": int(batch.sample_id[b]), "x": tensor_digest(batch.x[b]),
                 "target": int(target[b]) if entry.spec.needs_label else None}
        keys.append(HeatmapCache.key(parts))
    return keys


def _raw_maps(entry: Entry, params: Any, model: nn.Module, card: ModelCard, batch: Batch,
              target: torch.Tensor, layer: str, seed: int, cache: HeatmapCache | None,
              model_key: str) -> torch.Tensor:
    """Raw maps for the batch, computing only the samples the cache does not hold."""
    def compute(rows: Batch, tgt: torch.Tensor) -> torch.Tensor:
        inp = ExplainInput(model=model, card=card, layer=layer, x=rows.x, target=tgt,
                           sample_id=rows.sample_id, seed=seed)
        return _run_method(entry, inp, params)

    if cache is None:
        return compute(batch, target)
    keys = _cache_keys(entry, params, layer, batch, target, seed, model_key or state_digest(model))
    sdim = 1 if entry.spec.temporal else 0  # the batch axis of a raw map
    found = [cache.get(k) for k in keys]
    missing = [b for b, v in enumerate(found) if v is None]
    if missing:
        idx = torch.tensor(missing, dtype=torch.long, device=batch.x.device)
        fresh = compute(batch.select(idx), target[idx.to(target.device)])
        for j, b in enumerate(missing):
            found[b] = fresh.select(sdim, j).cpu()
            cache.put(keys[b], found[b])
    return torch.stack(found, dim=sdim).to(batch.x.device)


def explain_batch(method: str, params: Any, model: nn.Module, card: ModelCard, batch: Batch, *,
                  target: torch.Tensor, layer: str | None = None, seed: int = 0,
                  post: PostprocessConfig = PostprocessConfig(), cache: HeatmapCache | None = None,
                  model_key: str = "") -> Explanation:
    """Explain ``batch`` with ``method`` on ``model`` (the SNN, or the ANN twin for ann_* methods).

    params: the method's params dataclass, a config table (dict) or None for defaults.
    target: ``[B]`` long, the class to explain (label or prediction: the runner's policy).
    model_key: identifies the weights in cache keys (checkpoint sha256); "" hashes the state dict.
    """
    entry = METHODS.get(method)
    check_compatible(entry, card)
    params = resolve_params(entry, params)
    name = resolve_layer(params, model, card, layer)
    return explain_resolved(entry, params, name, model, card, batch, target=target, seed=seed, post=post,
                            cache=cache, model_key=model_key)


def explain_resolved(entry: Entry, params: Any, layer: str, model: nn.Module, card: ModelCard, batch: Batch, *,
                     target: torch.Tensor, seed: int = 0, post: PostprocessConfig = PostprocessConfig(),
                     cache: HeatmapCache | None = None, model_key: str = "") -> Explanation:
    """:func:`explain_batch` for a method already checked against ``card`` with resolved
    ``params`` (its params dataclass) and ``layer`` ("" = none): what the runner calls per
    batch once the plan has resolved them."""
    name = layer
    target = target.reshape(-1).long()
    if target.shape[0] != len(batch):
        raise BenchError(f"target has {target.shape[0]} entries for a batch of {len(batch)}")
    raw = _raw_maps(entry, params, model, card, batch, target, name, seed, cache, model_key)
    size = int(batch.x.shape[-1])
    steps = steps_deg = None
    if entry.spec.temporal:
        steps = postprocess(raw, size, post)
        steps_deg = is_degenerate_after_policy(raw, post)
        raw = reduce_time(raw, params.time_reduce)
    return Explanation(maps=postprocess(raw, size, post), steps=steps,
                       degenerate=is_degenerate_after_policy(raw, post), steps_degenerate=steps_deg)
