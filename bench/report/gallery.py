"""Heatmap galleries from the example maps a run saves (``examples/``).

``fig_gallery``: one row per method, one column per example sample, the input (with the object
outline) in the first row. ``fig_steps``: the per-time-step maps of the temporal methods of
every model for the first example sample, as strips (the paper's "localization map at each
time step").
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.report.data import ReportData  # noqa: E402
from bench.report.figures import finish  # noqa: E402

CMAP = "jet"


def _image(arr: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` float in [0, 1] -> ``[H, W, C]`` (gray for one channel)."""
    img = np.asarray(arr, dtype=np.float32).transpose(1, 2, 0)
    return img[..., 0] if img.shape[-1] == 1 else img


def _show_input(ax, inputs: dict, j: int, title: str = "") -> None:
    ax.imshow(_image(inputs["image"][j]), cmap="gray" if inputs["image"].shape[1] == 1 else None,
              interpolation="nearest")
    if "mask" in inputs:
        ax.contour(inputs["mask"][j].astype(float), levels=[0.5], colors="white", linewidths=0.8)
    ax.set_title(title, fontsize=7)


def _overlay(ax, inputs: dict | None, j: int, heat: np.ndarray) -> None:
    if inputs is not None:
        ax.imshow(_image(inputs["image"][j]).mean(-1) if inputs["image"].shape[1] > 1
                  else _image(inputs["image"][j]), cmap="gray", interpolation="nearest")
        ax.imshow(np.asarray(heat, np.float32), cmap=CMAP, alpha=0.55, vmin=0, vmax=1,
                  interpolation="nearest")
    else:
        ax.imshow(np.asarray(heat, np.float32), cmap=CMAP, vmin=0, vmax=1, interpolation="nearest")


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _class_name(rd: ReportData, k: int) -> str:
    names = rd.run["dataset"].get("class_names") or []
    return names[k] if 0 <= k < len(names) else str(k)


def fig_gallery(rd: ReportData, model: str, ex: dict) -> Figure | None:
    """Rows: input, then each method's maps of the example samples on ``model``."""
    methods = [m for m in rd.method_order(rd.run["dataset"]["name"], model) if (model, m) in ex]
    if not methods:
        return None
    inputs = ex.get("inputs")
    k = len(ex[(model, methods[0])]["sample_id"])
    fig, axes = plt.subplots(len(methods) + 1, k, figsize=(1.25 * k + 1.6, 1.25 * (len(methods) + 1) + 0.7),
                             squeeze=False)
    for j in range(k):
        first = ex[(model, methods[0])]
        if inputs is not None:
            _show_input(axes[0, j], inputs, j, f"{_class_name(rd, int(first['target'][j]))} "
                                               f"(pred {_class_name(rd, int(first['pred'][j]))})")
        _off(axes[0, j])
    axes[0, 0].set_ylabel("input", fontsize=7)
    for i, m in enumerate(methods, start=1):
        arr = ex[(model, m)]
        for j in range(k):
            _overlay(axes[i, j], inputs, j, arr["maps"][j])
            if bool(arr["degenerate"][j]):
                axes[i, j].set_title("degenerate", fontsize=6, color="red")
            _off(axes[i, j])
        axes[i, 0].set_ylabel(m, fontsize=7, rotation=0, ha="right", va="center")
    return finish(fig, f"{model}: explanations of the first {k} samples", left=1.4, right=0.1,
                  bottom=0.1, wspace=0.05, hspace=0.25)


def fig_steps(rd: ReportData, ex: dict) -> Figure | None:
    """Per-time-step maps of every temporal method on every model, for the first example
    sample: one row per (model, method), one column per time step, then the aggregated map."""
    order = {m: i for i, m in enumerate(rd.run.get("models", []))}
    rows = sorted((k for k in ex if k != "inputs" and "steps" in ex[k]), key=lambda k: (order.get(k[0], 99), k[1]))
    if not rows:
        return None
    inputs = ex.get("inputs")
    T = max(ex[k]["steps"].shape[0] for k in rows)
    fig, axes = plt.subplots(len(rows), T + 2, figsize=(0.95 * (T + 2) + 1.7, 1.0 * len(rows) + 0.7), squeeze=False)
    for i, key in enumerate(rows):
        arr = ex[key]
        if inputs is not None:
            _show_input(axes[i, 0], inputs, 0, "input" if i == 0 else "")
        for t in range(T):
            if t < arr["steps"].shape[0]:
                _overlay(axes[i, t + 1], inputs, 0, arr["steps"][t, 0])
            if i == 0:
                axes[i, t + 1].set_title(f"t={t}", fontsize=7)
        _overlay(axes[i, T + 1], inputs, 0, arr["maps"][0])
        if i == 0:
            axes[i, T + 1].set_title("aggregated", fontsize=7)
        for ax in axes[i]:
            _off(ax)
        axes[i, 0].set_ylabel(f"{key[0]}\n{key[1]}", fontsize=6, rotation=0, ha="right", va="center")
    return finish(fig, f"maps per time step (sample {int(ex[rows[0]]['sample_id'][0])})", left=1.5,
                  right=0.1, bottom=0.1, wspace=0.05, hspace=0.1)
