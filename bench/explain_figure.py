"""The paper-style explanation figure (Kim & Panda 2021, Fig. 3-4 layout).

Rows of panels over one input image: the chosen method's per-time-step maps every k-th step
plus its time-aggregated map, SNN Grad-CAM per step, and Grad-CAM on the ANN twin. Overlays
use the reference code's display: jet colormap at alpha 0.5 over the image.

:func:`figure_rows` computes the maps (through :func:`bench.explain.explain_batch`, so the
figure shows exactly what the benchmark scores); :func:`paper_rows` is the paper's own layout
(one row of per-step maps, every third step); :func:`draw_figure` only draws. An input of
more than 3 channels holds T steps (frames or ON/OFF events, :mod:`bench.report.display`): a
step's panel is drawn over that step, every other panel over the last step.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
from torch import nn

from bench.data.base import Batch
from bench.errors import BenchError
from bench.explain import explain_batch, uses_layer
from bench.models.card import ModelCard
from bench.registry import METHODS


@dataclasses.dataclass(frozen=True)
class Panel:
    """title, heat ``[H, W]`` in [0, 1] overlaid on the image (None: the image alone), and the
    time step the heat is of (None: no single step)."""

    title: str
    heat: torch.Tensor | None = None
    step: int | None = None


def default_every(T: int) -> int:
    """At most ~10 step panels: every step for T <= 10, every 3rd for the paper's T = 30."""
    return max(1, math.ceil(T / 10))


def method_panels(method: str, model: nn.Module, card: ModelCard, batch: Batch, target: torch.Tensor,
                  *, params: dict | None = None, layer: str | None = None, every: int = 1,
                  seed: int = 0) -> list[Panel]:
    """Panels of one method for the first sample: steps ``0, every, 2 every, ...`` and the mean."""
    e = explain_batch(method, params, model, card, batch, target=target, layer=layer, seed=seed)
    panels = []
    if e.steps is not None:
        panels = [Panel(f"t={t}", e.steps[t, 0].cpu(), t) for t in range(0, e.steps.shape[0], every)]
    flag = " (degenerate)" if bool(e.degenerate[0]) else ""
    reduce = f"time {METHODS.get(method).make_params(params).time_reduce}" if e.steps is not None else method
    panels.append(Panel(reduce + flag, e.maps[0].cpu()))
    return panels


def _row_label(method: str, params: dict | None, card: ModelCard, layer: str | None) -> str:
    """``method (layer)`` for layer-targeting methods, else the method name."""
    p = METHODS.get(method).make_params(params)
    return f"{method} ({layer or p.layer or card.default_layer})" if uses_layer(p) else method


def figure_rows(method: str, model: nn.Module, card: ModelCard, batch: Batch, target: torch.Tensor, *,
                twin: nn.Module | None = None, params: dict | None = None, layer: str | None = None,
                every: int | None = None, seed: int = 0) -> list[tuple[str, list[Panel]]]:
    """``[(row label, panels)]``: the method; on an SNN also SNN Grad-CAM and ANN Grad-CAM (twin)."""
    every = every or default_every(card.T)
    first = [Panel("input")] + method_panels(method, model, card, batch, target, params=params,
                                             layer=layer, every=every, seed=seed)
    rows = [(_row_label(method, params, card, layer), first)]
    if card.kind == "snn" and method != "snn_gradcam":
        rows.append((_row_label("snn_gradcam", None, card, layer), [Panel("")] + method_panels(
            "snn_gradcam", model, card, batch, target, layer=layer, every=every, seed=seed)))
    if twin is not None:
        ann = method_panels("ann_gradcam", twin, twin.card, batch, target, layer=layer, seed=seed)
        rows.append((f"{_row_label('ann_gradcam', None, twin.card, layer)} on {twin.card.name}",
                     [Panel("")] + ann))
    return rows


#: The reference code's figure shows every third of its 30 steps (``main.py``: ``process % 3 == 0``).
PAPER_EVERY = 3


def paper_rows(method: str, model: nn.Module, card: ModelCard, batch: Batch, target: torch.Tensor, *,
               params: dict | None = None, layer: str | None = None, every: int | None = None,
               seed: int = 0) -> list[tuple[str, list[Panel]]]:
    """The SAM paper's layout (Kim & Panda 2021, Fig. 3-4, as the reference code draws it): one
    row, the input then the method's per-step maps at the chosen layer at steps ``0, every, ...``
    (default every third), each map min-max normalized on its own; no time-aggregated map and
    no Grad-CAM rows."""
    if not METHODS.get(method).spec.temporal:
        raise BenchError(f"the paper layout shows per-step maps; {method!r} gives one map per image "
                         "(use --layout bench)")
    steps = method_panels(method, model, card, batch, target, params=params, layer=layer,
                          every=every or PAPER_EVERY, seed=seed)[:-1]  # [:-1]: drop the time aggregate
    return [(_row_label(method, params, card, layer), [Panel("input")] + steps)]


def _shown(image: torch.Tensor, step: int | None, steps: int | None):
    """``imshow`` array of ``image`` ``[C, H, W]`` in [0, 1]: ``[H, W]`` or ``[H, W, 3]``; more
    than 3 channels: its step ``step`` (None: the last) of ``steps`` (None: inferred)."""
    from bench.report.display import step_layout, step_rgb

    x = image.detach().cpu().clamp(0, 1)
    if x.shape[0] > 3:
        return step_rgb(x.numpy(), step_layout(x.shape[0], steps), step)
    shown = x.permute(1, 2, 0).numpy()
    return shown[..., 0] if shown.shape[-1] == 1 else shown


def draw_figure(image: torch.Tensor, rows: list[tuple[str, list[Panel]]], path: str | Path,
                title: str = "", steps: int | None = None) -> Path:
    """Draw ``rows`` over ``image`` ``[C, H, W]`` in [0, 1] and save to ``path`` (PNG/PDF/SVG).
    ``steps``: T of a time-varying image (``[T * C, H, W]``), when known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = max(len(panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(1.6 * ncols, 1.75 * len(rows)), squeeze=False)
    for r, (label, panels) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(panels) or (panels[c].heat is None and panels[c].title == ""):
                continue
            shown = _shown(image, panels[c].step, steps)
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
            if panels[c].heat is not None:
                ax.imshow(panels[c].heat.numpy(), cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
            ax.set_title(panels[c].title, fontsize=7)
        axes[r, 0].text(-0.08, 0.5, label, transform=axes[r, 0].transAxes, rotation=90,
                        ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out
