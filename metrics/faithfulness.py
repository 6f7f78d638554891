"""Registered ``deletion`` and ``insertion`` metrics with named protocol presets.

Every choice is a parameter; ``preset`` fills the ones left unset (None):

| preset   | deletion / insertion substrate | steps           | class | score | AUC       |
|----------|--------------------------------|-----------------|-------|-------|-----------|
| default  | blur / blur (kernel 11, s 5)   | 32              | pred  | prob  | trapezoid |
| rise2018 | zero / blur (kernel 11, s 5)   | H (W px a step) | pred  | prob  | trapezoid |
| m4       | gray 127 / gray 127            | 20              | pred  | prob  | mean      |
| latec    | as rise2018                    | as rise2018     | label | prob  | trapezoid |

``default`` fills with a blur for both curves: a zero fill takes the image off the data, so any
deletion order collapses the prediction; zero-fill deletion then barely separates a mask oracle
from the ``random`` baseline and ranks methods unlike insertion, while with a blur both curves
separate the methods and agree (the measurements on ``shapes`` are in the README, "Metrics").

``rise2018`` is the paper's protocol (RISE code: step = 224 px on 224 x 224 images, i.e. one
image row's worth of pixels per step). ``m4`` follows InterpretDL's evaluator used by the M4
benchmark (uint8 gray 127, 20 percentile steps, mean of the curve).
``latec`` differs from rise2018 in the class: LATEC scores the ground-truth class (its one
image per forward pass changes nothing here, scores never depend on the batch).
Ties in the saliency order: stable (row-major) by default for every preset.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from bench.errors import BenchError
from bench.registry import METRICS
from metrics import _faithfulness as FA
from metrics.base import ScoreInput, Scores

_ROWS = "rows"  # n_steps placeholder: one image row's worth of pixels per step (H steps)
_COMMON = dict(blur_kernel=11, blur_sigma=5.0, gray_level=127 / 255, class_policy="pred",
               score="prob", tie_break="stable", auc_rule="trapezoid")
PRESETS: dict[str, dict[str, Any]] = {
    "default": {**_COMMON, "deletion": "blur", "insertion": "blur", "n_steps": 32},
    "rise2018": {**_COMMON, "deletion": "zero", "insertion": "blur", "n_steps": _ROWS},
    "m4": {**_COMMON, "deletion": "gray", "insertion": "gray", "n_steps": 20, "auc_rule": "mean"},
    "latec": {**_COMMON, "deletion": "zero", "insertion": "blur", "n_steps": _ROWS,
              "class_policy": "label"},
}


@dataclasses.dataclass(frozen=True)
class PerturbationParams:
    """Deletion/insertion protocol. Unset (None) fields come from ``preset``.

    substrate: what replaces pixels (deletion) / the start image (insertion), in the model's
        normalized space: zero (the dataset mean colour), blur, mean (the image's channel means),
        gray (pixel value ``gray_level`` in [0, 1], normalized with the dataset statistics).
    n_steps: the curve has n_steps + 1 points at x = i / n_steps.
    class_policy: "pred" (class predicted on the clean image) or "label" (ground truth).
    score: "prob" (softmax) or "logit". tie_break: "stable" (row-major) or "random" (seeded per
    sample). auc_rule: "trapezoid" or "mean". max_batch: rows per forward pass (bounds RAM only).
    """

    preset: Literal["default", "rise2018", "m4", "latec"] = "default"
    substrate: FA.Substrate | None = None
    blur_kernel: int | None = None
    blur_sigma: float | None = None
    gray_level: float | None = None
    n_steps: int | None = None
    class_policy: Literal["pred", "label"] | None = None
    score: FA.ScoreKind | None = None
    tie_break: Literal["stable", "random"] | None = None
    auc_rule: FA.AucRule | None = None
    max_batch: int = 256

    def __post_init__(self) -> None:
        if self.n_steps is not None and self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")
        if self.blur_kernel is not None and (self.blur_kernel < 1 or self.blur_kernel % 2 == 0):
            raise ValueError(f"blur_kernel must be odd and >= 1, got {self.blur_kernel}")
        if self.blur_sigma is not None and self.blur_sigma <= 0:
            raise ValueError(f"blur_sigma must be > 0, got {self.blur_sigma}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")


def resolve(params: PerturbationParams, kind: Literal["deletion", "insertion"], height: int) -> dict[str, Any]:
    """The concrete protocol: the preset's values overridden by every field that is set."""
    spec = dict(PRESETS[params.preset])
    spec["substrate"] = spec.pop(kind)
    del spec["deletion" if kind == "insertion" else "insertion"]
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if f.name != "preset" and value is not None:
            spec[f.name] = value
    if spec["n_steps"] == _ROWS:
        spec["n_steps"] = height
    return spec


def _gray(inp: ScoreInput, level: float) -> torch.Tensor:
    """Pixel gray ``level`` as ``[C]`` normalized values, from the dataset's statistics."""
    mean, std = inp.data_mean, inp.data_std
    if mean is None or std is None:
        raise BenchError("substrate 'gray' needs the dataset's normalization statistics "
                         "(ScoreInput.data_mean / data_std)")
    return (level - torch.as_tensor(mean, dtype=torch.float32)) / torch.as_tensor(std, dtype=torch.float32)


def _perturbation(inp: ScoreInput, params: PerturbationParams, kind: Literal["deletion", "insertion"]) -> Scores:
    if inp.model_fn is None:
        raise BenchError(f"{kind} needs the probed model (model_fn)")
    spec = resolve(params, kind, inp.maps.shape[1])
    curve_fn = FA.deletion_curve if kind == "deletion" else FA.insertion_curve
    gray = _gray(inp, spec["gray_level"]) if spec["substrate"] == "gray" else None
    target = inp.batch.y if spec["class_policy"] == "label" else None
    curves = curve_fn(inp.model_fn, inp.batch.x, inp.maps, sample_id=inp.batch.sample_id,
                      target=target, substrate=spec["substrate"], blur_kernel=spec["blur_kernel"],
                      blur_sigma=spec["blur_sigma"], gray=gray, n_steps=spec["n_steps"],
                      score=spec["score"], tie_break=spec["tie_break"], seed=inp.seed,
                      max_batch=spec["max_batch"])
    points = tuple(i / spec["n_steps"] for i in range(spec["n_steps"] + 1))
    return Scores(values=FA.auc(curves, spec["auc_rule"]), curve=curves, points=points)


#: what both metrics of this module register with (each adds its summary and direction)
_REG = dict(category="faithfulness", needs=frozenset({"model"}), output="curve", per_timestep=False,
            scope="explanation", version="1", reference="Petsiuk et al. 2018, RISE (BMVC)", params=PerturbationParams)


@METRICS.register(summary="Deletion: class score as the most salient pixels are removed (AUC)",
                  higher_is_better=False, **_REG, headline=True)
def deletion(inp: ScoreInput, params: PerturbationParams) -> Scores:
    return _perturbation(inp, params, "deletion")


@METRICS.register(summary="Insertion: class score as the most salient pixels are restored (AUC)",
                  higher_is_better=True, **_REG)
def insertion(inp: ScoreInput, params: PerturbationParams) -> Scores:
    return _perturbation(inp, params, "insertion")
