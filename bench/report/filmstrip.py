"""Filmstrips: one figure per example sample of a time-varying input (frames or events).

One column per time step, then one for all steps together. Rows: the input at each step
(frames as they are; events ON red / OFF blue on black), the object's mask at each step, then
per (model, method) the maps: a temporal method's map of each step (over that step's frame,
with that step's mask outlined) and its time-aggregated map; a static method has one map,
drawn at every step, since that is how the per-step metrics score it (against each step's
mask), and in the last column. The last column outlines the union of the steps' masks (what
a time-aggregated map is scored against).

Drawn only for inputs with more than one step (:func:`bench.report.display.step_layout`);
the masks come from ``examples/inputs.npz`` (``step_mask [n, T, H, W]``), the maps from
``examples/<model>/<method>.npz`` (``maps [n, H, W]``, ``steps [T, n, H, W]``).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.report import gallery  # noqa: E402
from bench.report.data import ReportData  # noqa: E402
from bench.report.display import Layout, all_gray, mean_rgb, step_gray, step_layout, step_rgb  # noqa: E402
from bench.report.figures import finish  # noqa: E402

#: outline colour of the masks over inputs and maps
OUTLINE = "white"


def layout(ex: dict) -> Layout | None:
    """The (T, C) layout of the example inputs, or None when there are none or they are static."""
    inputs = ex.get("inputs")
    if inputs is None:
        return None
    lay = step_layout(int(inputs["image"].shape[1]), gallery.input_steps(inputs))
    return lay if lay.temporal else None


def method_rows(rd: ReportData, ex: dict) -> list[tuple[str, str]]:
    """``(model, method)`` with example maps: models in suite order, methods as in the gallery
    (best mean rank first, baselines last)."""
    dataset = rd.run["dataset"]["name"]
    return [(model, m) for model in rd.run.get("models", [])
            for m in rd.method_order(dataset, model) if (model, m) in ex]


def _outline(ax, mask: np.ndarray | None) -> None:
    if mask is not None and mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors=OUTLINE, linewidths=0.7)


def _heat(ax, under: np.ndarray, heat: np.ndarray, mask: np.ndarray | None) -> None:
    """``heat`` ``[H, W]`` in [0, 1] (jet) over the gray ``under`` ``[H, W]``, ``mask`` outlined."""
    ax.imshow(under, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.imshow(np.asarray(heat, np.float32), cmap=gallery.CMAP, alpha=0.55, vmin=0, vmax=1,
              interpolation="nearest")
    _outline(ax, mask)


def fig_filmstrip(rd: ReportData, ex: dict, j: int) -> Figure | None:
    """The filmstrip of example sample ``j`` (row ``j`` of ``examples/inputs.npz``); None when
    the inputs are static or no method saved maps."""
    lay = layout(ex)
    rows = method_rows(rd, ex)
    if lay is None or not rows:
        return None
    inputs = ex["inputs"]
    image = np.asarray(inputs["image"][j], np.float32)
    T = lay.steps
    step_mask = inputs["step_mask"][j] if "step_mask" in inputs else None      # [T, H, W]
    union = inputs["mask"][j] if "mask" in inputs else (None if step_mask is None else step_mask.any(0))

    def mask_at(t: int) -> np.ndarray | None:
        return None if step_mask is None else step_mask[t]

    n_rows = 1 + (step_mask is not None) + len(rows)
    fig, axes = plt.subplots(n_rows, T + 1, figsize=(0.95 * (T + 1) + 1.7, 0.95 * n_rows + 0.8), squeeze=False)
    for ax in axes.ravel():
        gallery._off(ax)
    for t in range(T):
        img = step_rgb(image, lay, t)
        axes[0, t].imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
        axes[0, t].set_title(f"t={t}", fontsize=7)
    img = mean_rgb(image, lay)
    axes[0, T].imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    axes[0, T].set_title("all steps", fontsize=7)
    axes[0, 0].set_ylabel("events\n(ON red,\nOFF blue)" if lay.events else "frames", fontsize=6,
                          rotation=0, ha="right", va="center")
    r = 1
    if step_mask is not None:
        for t in range(T):
            axes[r, t].imshow(step_mask[t].astype(float), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if union is not None:
            axes[r, T].imshow(union.astype(float), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[r, 0].set_ylabel("mask", fontsize=6, rotation=0, ha="right", va="center")
        r += 1
    under_all = all_gray(image, lay)
    for model, method in rows:
        arr = ex[(model, method)]
        if "sample_id" in inputs:  # the run writes every example file in one order; this guards it
            arr = gallery._aligned(arr, np.asarray(inputs["sample_id"]), f"{method}.npz")
        steps = arr.get("steps")
        for t in range(T):
            if steps is None:       # a static map: scored against every step's mask, drawn so
                heat = arr["maps"][j]
            elif t < steps.shape[0]:
                heat = steps[t, j]
            else:
                continue
            _heat(axes[r, t], step_gray(image, lay, t), heat, mask_at(t))
        _heat(axes[r, T], under_all, arr["maps"][j], union)
        if bool(arr["degenerate"][j]):
            axes[r, T].set_title("degenerate", fontsize=6, color="red")
        label = method if steps is not None else f"{method}\n(one map)"
        if len(rd.run.get("models", [])) > 1:
            label = f"{model}\n{label}"
        axes[r, 0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
        r += 1
    first = {}  # each model's first row: its prediction (every cell of a model has the same)
    for model, method in rows:
        first.setdefault(model, ex[(model, method)])
    preds = ", ".join(f"{gallery._class_name(rd, int(a['pred'][j]))}" + (f" by {m}" if len(first) > 1 else "")
                      for m, a in first.items())
    name = gallery._class_name(rd, int(inputs["label"][j]))
    return finish(fig, f"sample {example_ids(ex)[j]}: {name} (pred {preds}); outline: the object at each step",
                  left=1.5, right=0.1, bottom=0.1, wspace=0.05, hspace=0.15)


def example_ids(ex: dict) -> list[int]:
    """The sample id of each example sample that gets a filmstrip (none for static inputs)."""
    if layout(ex) is None:
        return []
    inputs = ex["inputs"]
    return [int(s) for s in inputs["sample_id"]] if "sample_id" in inputs else list(range(len(inputs["image"])))
