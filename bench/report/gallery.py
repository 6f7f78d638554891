"""Heatmap galleries from the example maps a run saves (``examples/``).

``fig_gallery``: one row per method, one column per example sample, the input (with the object
outline) in the first row. An input of more than 3 channels holds T steps (frames or ON/OFF
events, :mod:`bench.report.display`): the galleries show its last step, and the per-step maps
over their own step. ``fig_steps``: the per-time-step maps of the temporal methods of
every model for the first example sample, as strips (the paper's "localization map at each
time step"). ``fig_attack_gallery``: clean vs attacked inputs and maps of a few methods.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.report.data import ATTACKED, ReportData  # noqa: E402
from bench.report.display import step_channels, step_gray, step_layout, step_rgb  # noqa: E402
from bench.report.figures import finish  # noqa: E402
from bench.store.rundir import sample_axis  # noqa: E402

CMAP = "jet"


def _image(arr: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` float in [0, 1] -> ``[H, W, C]`` (gray for one channel)."""
    img = np.asarray(arr, dtype=np.float32).transpose(1, 2, 0)
    return img[..., 0] if img.shape[-1] == 1 else img


def input_steps(inputs: dict | None) -> int | None:
    """T of the example inputs when they say (``step_mask [n, T, H, W]``), else None."""
    return None if inputs is None or "step_mask" not in inputs else int(inputs["step_mask"].shape[1])


def _shown(arr: np.ndarray, steps: int | None = None, t: int | None = None) -> tuple[np.ndarray, str | None]:
    """``imshow`` image and colormap of ``arr`` ``[C, H, W]`` in [0, 1]: as it is for C <= 3,
    else step ``t`` (None: the last) of its T steps (``steps``: T when known)."""
    if arr.shape[0] <= 3:
        return _image(arr), "gray" if arr.shape[0] == 1 else None
    img = step_rgb(arr, step_layout(arr.shape[0], steps), t)
    return img, "gray" if img.ndim == 2 else None


def _show_input(ax, inputs: dict, j: int, title: str = "", t: int | None = None) -> None:
    """Input ``j`` (step ``t`` of a time-varying one, None: its last) with the mask outline
    (the step's mask when ``t`` is given and the inputs have per-step masks)."""
    img, cmap = _shown(inputs["image"][j], input_steps(inputs), t)
    ax.imshow(img, cmap=cmap, interpolation="nearest")
    if t is not None and "step_mask" in inputs:
        mask = inputs["step_mask"][j, t]
    else:
        mask = inputs["mask"][j] if "mask" in inputs else None
    if mask is not None:
        ax.contour(mask.astype(float), levels=[0.5], colors="white", linewidths=0.8)
    ax.set_title(title, fontsize=7)


def _overlay(ax, inputs: dict | None, j: int, heat: np.ndarray, t: int | None = None) -> None:
    """``heat`` over input ``j`` (step ``t`` of a time-varying input, None: its last)."""
    _overlay_on(ax, None if inputs is None else inputs["image"][j], heat, input_steps(inputs), t)


def _overlay_on(ax, image: np.ndarray | None, heat: np.ndarray, steps: int | None = None,
                t: int | None = None) -> None:
    """``heat`` ``[H, W]`` in [0, 1] over the gray version of ``image`` ``[C, H, W]`` (if any;
    more than 3 channels: of its step ``t``, None: the last, of ``steps`` steps)."""
    if image is not None:
        if image.shape[0] > 3:
            gray = step_gray(image, step_layout(image.shape[0], steps), t)
        else:
            img = _image(image)
            gray = img.mean(-1) if img.ndim == 3 else img
        ax.imshow(gray, cmap="gray", interpolation="nearest")
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
    temporal = inputs is not None and inputs["image"].shape[1] > 3
    axes[0, 0].set_ylabel("input\n(last step)" if temporal else "input", fontsize=7)
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
                _overlay(axes[i, t + 1], inputs, 0, arr["steps"][t, 0], t=t)
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


#: at most this many example samples (rows) in the clean-vs-attacked gallery
ATTACK_ROWS = 4


def attack_methods(rd: ReportData, model: str, ex: dict) -> list[str]:
    """Methods of ``model`` whose example cell holds maps of attacked inputs (``adv_maps``):
    those whose spec asks for the gallery (``attack_gallery``, in suite order), else all."""
    have = [m for m in rd.method_order(rd.run["dataset"]["name"], model) if "adv_maps" in ex.get((model, m), {})]
    return [m for m in rd.attack_gallery_methods() if m in have] or have


def attack_gallery_models(rd: ReportData, ex: dict) -> list[str]:
    """Models that get a clean-vs-attacked gallery: those with attacked maps, except a model
    whose (method, method model) cells all show in another model's gallery (the ANN twin's
    Grad-CAM appears in every SNN's gallery already), in the suite's model order."""
    cells = {m: {(meth, rd.method_model(m, meth)) for meth in attack_methods(rd, m, ex)}
             for m in rd.run.get("models", [])}
    cells = {m: c for m, c in cells.items() if c}
    names = list(cells)
    return [m for i, m in enumerate(names)
            if not any(cells[m] < cells[o] or (cells[m] == cells[o] and j < i) for j, o in enumerate(names) if o != m)]


def _aligned(arr: dict | None, sample_id: np.ndarray, name: str) -> dict | None:
    """``arr`` (the example file ``name``) with its per-sample arrays in the order of
    ``sample_id`` (sample axes: :func:`bench.store.rundir.sample_axis`); unchanged when it has no
    ``sample_id`` or lacks one of them (the run writes every example file in one order; this
    only guards it)."""
    if arr is None or "sample_id" not in arr:
        return arr
    pos = {int(s): i for i, s in enumerate(arr["sample_id"])}
    if not all(int(s) in pos for s in sample_id):
        return arr
    idx = np.array([pos[int(s)] for s in sample_id])
    axes = {k: sample_axis(Path(name), k) for k in arr}
    return {k: v if axes[k] is None else np.take(v, idx, axis=axes[k]) for k, v in arr.items()}


def _eps_index(points: np.ndarray, eps: float) -> int:
    """Index of ``eps`` in ``points`` (the largest point when it is not there)."""
    points = np.asarray(points, float)
    hit = np.flatnonzero(np.isclose(points, eps))
    if len(hit):
        return int(hit[0])
    return int(np.nanargmax(points)) if np.isfinite(points).any() else len(points) - 1


def fig_attack_gallery(rd: ReportData, model: str, ex: dict, attacked: dict) -> Figure | None:
    """Clean vs attacked at the largest eps, one row per example sample. Per model a method
    ran on (the probed SNN, its ANN twin for ``ann_*`` methods): the attacked input (crafted
    white-box on that model, with its prediction), the perturbation (gray = 0, scaled to
    +-eps), then each method's clean and attacked maps. ``attacked``: see
    :meth:`~bench.report.data.ReportData.attacked`."""
    methods = attack_methods(rd, model, ex)
    if not methods:
        return None
    sid = ex[(model, methods[0])]["sample_id"]
    inputs = _aligned(ex.get("inputs"), sid, "inputs.npz")
    attacked = {src: _aligned(a, sid, f"{ATTACKED}.npz") for src, a in attacked.items()}
    by_source: dict[str, list[str]] = {}
    for m in methods:
        by_source.setdefault(rd.method_model(model, m), []).append(m)
    cols: list[tuple[str, object]] = []  # (column title, draw(ax, j) -> per-row title or "")

    if inputs is not None:
        def clean(ax, j, first=ex[(model, methods[0])]):
            _show_input(ax, inputs, j)
            return f"{_class_name(rd, int(inputs['label'][j]))}, pred {_class_name(rd, int(first['pred'][j]))}"
        cols.append(("clean input", clean))
    for source, ms in by_source.items():
        adv = attacked.get(source)
        e_adv = int(np.argmax(adv["points"])) if adv is not None else None
        pts = ex[(model, ms[0])].get("adv_points", np.array([np.nan]))
        eps = float(adv["points"][e_adv]) if adv is not None else float(np.max(pts))
        if adv is not None:
            def attacked_input(ax, j, adv=adv, e=e_adv):
                shown, cmap = _shown(np.asarray(adv["image"][e, j], np.float32), input_steps(inputs))
                ax.imshow(shown, cmap=cmap, interpolation="nearest")
                return f"pred {_class_name(rd, int(adv['pred'][e, j]))}"
            cols.append((f"attacked on {source}\neps {eps * 255:.3g}/255", attacked_input))
            if inputs is not None:
                def perturbation(ax, j, adv=adv, e=e_adv, eps=eps):
                    delta = np.asarray(adv["image"][e, j], np.float32) - np.asarray(inputs["image"][j], np.float32)
                    if delta.shape[0] > 3:  # the last step's channels, as gray: a signed change
                        delta = step_channels(delta, step_layout(delta.shape[0], input_steps(inputs))).mean(0,
                                                                                                  keepdims=True)
                    ax.imshow(_image(np.clip(0.5 + 0.5 * delta / eps, 0, 1)),
                              cmap="gray" if delta.shape[0] == 1 else None, interpolation="nearest")
                    return ""
                cols.append(("perturbation\n(scaled to +-eps)", perturbation))
        for m in ms:
            arr = ex[(model, m)]
            e_map = _eps_index(arr.get("adv_points", np.full(len(arr["adv_maps"]), np.nan)), eps)

            def clean_map(ax, j, arr=arr):
                _overlay(ax, inputs, j, arr["maps"][j])
                return ""

            def adv_map(ax, j, arr=arr, e=e_map, adv=adv, e_adv=e_adv):
                _overlay_on(ax, None if adv is None else adv["image"][e_adv, j], arr["adv_maps"][e, j],
                            input_steps(inputs))
                return ""
            cols += [(f"{m}\nclean", clean_map), (f"{m}\nattacked", adv_map)]
    k = min(ATTACK_ROWS, len(ex[(model, methods[0])]["adv_maps"][0]))
    fig, axes = plt.subplots(k, len(cols), figsize=(1.2 * len(cols) + 0.5, 1.3 * k + 0.9), squeeze=False)
    for j in range(k):
        for c, (title, draw) in enumerate(cols):
            sub = draw(axes[j, c], j)
            head = title + "\n" if j == 0 else ""
            axes[j, c].set_title(head + sub, fontsize=6)
            _off(axes[j, c])
        axes[j, 0].set_ylabel(f"sample {int(ex[(model, methods[0])]['sample_id'][j])}", fontsize=7)
    finish(fig, f"{model}: clean vs attacked inputs and maps", left=0.45, right=0.1, bottom=0.1,
           wspace=0.08, hspace=0.55 if k > 1 else 0.3)
    fig.subplots_adjust(top=1 - 0.9 / fig.get_size_inches()[1])  # room for three-line column heads
    return fig
