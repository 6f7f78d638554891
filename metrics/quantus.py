"""Quantus metrics on the run's maps and the probed model: ``quantus_*`` (needs the ``quantus`` extra).

One registered metric per Quantus metric, not one ``quantus`` metric with a ``name`` parameter:
Quantus metrics differ in score direction (Infidelity: lower is better, FaithfulnessCorrelation:
higher), output (ROAD and Sensitivity-n are curves), needs (RandomLogit re-explains) and
options, and each of those is a field of the registry spec, fixed per registered name. Each
metric's options are its own frozen dataclass, so ``[metrics.quantus_road.sweep] noise = [...]``
sweeps like any metric, and a suite lists several Quantus metrics as several tables.

| metric                             | Quantus class           | output              | better |
|------------------------------------|-------------------------|---------------------|--------|
| quantus_faithfulness_correlation   | FaithfulnessCorrelation | scalar              | higher |
| quantus_infidelity                 | Infidelity              | scalar              | lower  |
| quantus_sensitivity_n              | FaithfulnessCorrelation | curve over n        | higher |
| quantus_road                       | ROAD                    | curve over % (MoRF) | lower  |
| quantus_random_logit               | RandomLogit             | scalar              | lower  |

Choices and deviations (the plumbing is in :mod:`metrics._quantus`):

* MuFidelity (Bhatt et al. 2020, "mu-fidelity") *is* what Quantus calls FaithfulnessCorrelation
  (random feature subsets replaced by a baseline; Pearson correlation of the maps' subset sums
  with the logit drops); Quantus 0.6 has no separate MuFidelity class, so there is one metric.
* Sensitivity-n (Ancona et al. 2018) is scored per sample, as in the paper: for each subset size
  n, the Pearson correlation over ``nr_runs`` random subsets of n features between the maps'
  subset sum and the output drop, i.e. FaithfulnessCorrelation at ``subset_size = n``.
  Quantus' ``SensitivityN`` class instead removes features cumulatively in the map's order and
  correlates over the *samples of the batch* (one number per n for the whole batch), which no
  per-sample score can reproduce (tests/test_metrics_quantus.py shows it).
* ROAD: Quantus 0.6 broadcasts a one-channel map over the image's channels and then indexes the
  imputation's pixel grid with channel-wise indices (IndexError on RGB). The map is given
  repeated over channels and the imputation gets pixel indices (:func:`_pixel_imputation`), so
  ``p`` percent of the *pixels* are imputed, as in Rong et al. 2022.
* RandomLogit re-runs the method for a random other class through ``inp.explain`` on a derived
  model whose logits are rotated per sample (:class:`metrics._quantus.ShiftLogits`): explaining
  the run's target on it explains Quantus' off-class. Exact for ``run.target = "label"``
  (Quantus' convention); under "pred" the re-explained class is another random class than the
  prediction. A method that does not read the logits (SAM) scores 1 (same map for every class).
* Quantus' "black" baseline is the sample's minimum value in the model's normalized space
  (Quantus' definition), not pixel 0.
* Scores use logits (Quantus' default ``softmax=False``); the class is the ground-truth label.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import torch

from bench.errors import BenchError
from bench.registry import METRICS
from metrics import _quantus as QU
from metrics.base import ScoreInput, Scores, require, variant

Baseline = Literal["black", "white", "mean"]
QUANTUS_REF = "Hedstroem et al. 2023, Quantus (JMLR), v0.6"
#: Quantus options every call here fixes: maps are post-processed once, by the runner
_PLAIN = dict(normalise=False, abs=False, disable_warnings=True, display_progressbar=False)


def _call_kw(arrays: QU.Arrays, i: int, model: torch.nn.Module, a: np.ndarray | None = None) -> dict[str, Any]:
    """The keyword arguments of one sample's Quantus ``__call__``."""
    return dict(model=model, x_batch=arrays.x[i:i + 1], y_batch=arrays.y[i:i + 1],
                a_batch=arrays.a[i:i + 1] if a is None else a, channel_first=True, device=arrays.device,
                batch_size=1)


def _values(results: list[Any]) -> torch.Tensor:
    return torch.tensor([np.nan if r is None else float(r) for r in results], dtype=torch.float32)


# -- FaithfulnessCorrelation (mu-fidelity) ----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FaithfulnessCorrelationParams:
    """nr_runs: random subsets per sample (Quantus: 100). subset_size: features (pixel-channel
    entries) replaced per subset (Quantus: 224, for 224 x 224 images). perturb_baseline: the fill."""

    nr_runs: int = 20
    subset_size: int = 64
    perturb_baseline: Baseline = "black"

    def __post_init__(self) -> None:
        if self.nr_runs < 2 or self.subset_size < 1:
            raise ValueError(f"nr_runs must be >= 2 and subset_size >= 1, got {self.nr_runs}, {self.subset_size}")


def _faithfulness_correlation(inp: ScoreInput, arrays: QU.Arrays, i: int, subset_size: int, nr_runs: int,
                              baseline: str) -> list[Any]:
    q = QU.quantus()
    metric = q.FaithfulnessCorrelation(nr_runs=nr_runs, subset_size=subset_size, perturb_baseline=baseline,
                                       return_aggregate=False, **_PLAIN)
    model = QU.FixedIdModel(QU.require_model(inp, "quantus"), int(arrays.sample_id[i]))
    return metric(**_call_kw(arrays, i, model))


@METRICS.register(summary="Quantus FaithfulnessCorrelation (mu-fidelity): corr. of subset sums with logit drops",
                  category="faithfulness", higher_is_better=True, needs=frozenset({"model"}), output="scalar",
                  version="1", reference=f"Bhatt et al. 2020 (IJCAI); {QUANTUS_REF}",
                  params=FaithfulnessCorrelationParams)
def quantus_faithfulness_correlation(inp: ScoreInput, params: FaithfulnessCorrelationParams) -> Scores:
    """``[B]`` Pearson correlation in [-1, 1]; NaN for a constant map or no logit change."""
    arrays = QU.Arrays.of(inp)
    return Scores(values=_values(QU.per_sample(inp, "quantus_faithfulness_correlation", lambda i, s: (
        _faithfulness_correlation(inp, arrays, i, params.subset_size, params.nr_runs, params.perturb_baseline)))))


# -- Sensitivity-n (per sample, Ancona et al.) -------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SensitivityNParams:
    """subset_sizes: the n of the curve (features: pixel-channel entries), increasing.
    nr_runs: random subsets per n and sample. perturb_baseline: the fill."""

    subset_sizes: tuple[int, ...] = (8, 32, 128)
    nr_runs: int = 16
    perturb_baseline: Baseline = "black"

    def __post_init__(self) -> None:
        n = self.subset_sizes
        if not n or n[0] < 1 or any(a >= b for a, b in zip(n, n[1:])):
            raise ValueError(f"subset_sizes must be increasing and >= 1, got {n}")
        if self.nr_runs < 2:
            raise ValueError(f"nr_runs must be >= 2, got {self.nr_runs}")


@METRICS.register(summary="Sensitivity-n per sample: corr. of n-feature subset sums with logit drops, vs n",
                  category="faithfulness", higher_is_better=True, needs=frozenset({"model"}), output="curve",
                  version="1", reference=f"Ancona et al. 2018 (ICLR); {QUANTUS_REF} (FaithfulnessCorrelation)",
                  params=SensitivityNParams)
def quantus_sensitivity_n(inp: ScoreInput, params: SensitivityNParams) -> Scores:
    """``[B, N]`` correlations, one per subset size (in order, one seeded generator per sample);
    value = NaN-mean over n."""
    arrays = QU.Arrays.of(inp)

    def one(i: int, s: int) -> list[Any]:
        return [[_faithfulness_correlation(inp, arrays, i, n, params.nr_runs, params.perturb_baseline)[0]
                 for n in params.subset_sizes]]

    rows = QU.per_sample(inp, "quantus_sensitivity_n", one)
    nan = [np.nan] * len(params.subset_sizes)
    curve = torch.tensor([nan if r is None else r for r in rows], dtype=torch.float32)
    return Scores(values=torch.nanmean(curve, 1), curve=curve, points=tuple(float(n) for n in params.subset_sizes))


# -- Infidelity -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class InfidelityParams:
    """perturb_patch_sizes: square patch sides (px) replaced one at a time. n_perturb_samples:
    repeats (only a random baseline makes them differ; Quantus: 10). perturb_baseline: the fill."""

    perturb_patch_sizes: tuple[int, ...] = (4,)
    n_perturb_samples: int = 1
    perturb_baseline: Baseline = "black"

    def __post_init__(self) -> None:
        if not self.perturb_patch_sizes or min(self.perturb_patch_sizes) < 1 or self.n_perturb_samples < 1:
            raise ValueError("perturb_patch_sizes must be >= 1 and n_perturb_samples >= 1")


@METRICS.register(summary="Quantus Infidelity: MSE between patch-removal logit drops and map-weighted input changes",
                  category="faithfulness", higher_is_better=False, needs=frozenset({"model"}), output="scalar",
                  version="1", reference=f"Yeh et al. 2019 (NeurIPS); {QUANTUS_REF}", params=InfidelityParams)
def quantus_infidelity(inp: ScoreInput, params: InfidelityParams) -> Scores:
    """``[B]`` >= 0, in squared logit units; NaN for a constant map."""
    q, model_fn, arrays = QU.quantus(), QU.require_model(inp, "quantus_infidelity"), QU.Arrays.of(inp)

    def one(i: int, s: int) -> list[Any]:
        metric = q.Infidelity(perturb_patch_sizes=list(params.perturb_patch_sizes),
                              n_perturb_samples=params.n_perturb_samples,
                              perturb_baseline=params.perturb_baseline, return_aggregate=False, **_PLAIN)
        return metric(**_call_kw(arrays, i, QU.FixedIdModel(model_fn, int(arrays.sample_id[i]))))

    return Scores(values=_values(QU.per_sample(inp, "quantus_infidelity", one)))


# -- ROAD -------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RoadParams:
    """percentages: shares (in %, increasing, in (0, 100)) of the most relevant pixels imputed
    (MoRF). noise: std of the imputation noise (normalized units; Quantus: 0.01)."""

    percentages: tuple[float, ...] = (10.0, 30.0, 50.0, 70.0, 90.0)
    noise: float = 0.01

    def __post_init__(self) -> None:
        p = self.percentages
        if not p or not all(0 < v < 100 for v in p) or any(a >= b for a, b in zip(p, p[1:])):
            raise ValueError(f"percentages must be increasing, in (0, 100), got {p}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")


def _pixel_imputation(arr: np.ndarray, indices: np.ndarray, **kw: Any) -> np.ndarray:
    """Quantus' noisy linear imputation of the *pixels* that ``indices`` (into the channel-wise
    flattened image ``arr [C, H, W]``) touch; Quantus 0.6 passes channel-wise indices to a
    function that indexes the pixel grid."""
    from quantus.functions.perturb_func import noisy_linear_imputation

    pixels = np.unique(np.asarray(indices) % (arr.shape[-2] * arr.shape[-1]))
    return noisy_linear_imputation(arr, pixels, **kw)


def road_metric(params: RoadParams) -> Any:
    """The Quantus ROAD object this metric calls (with the pixel-index imputation)."""
    return QU.quantus().ROAD(percentages=list(params.percentages), noise=params.noise,
                             perturb_func=_pixel_imputation, return_aggregate=False, **_PLAIN)


def road_maps(a: np.ndarray, channels: int) -> np.ndarray:
    """Maps ``[B, 1, H, W]`` repeated over the image's channels, so that ROAD's share of
    features is a share of pixels."""
    return np.ascontiguousarray(np.repeat(a, channels, axis=1))


@METRICS.register(summary="Quantus ROAD (MoRF): still correct after imputing the top p% pixels, vs p",
                  category="faithfulness", higher_is_better=False, needs=frozenset({"model"}), output="curve",
                  version="1", reference=f"Rong et al. 2022, ROAD (ICML); {QUANTUS_REF}", params=RoadParams)
def quantus_road(inp: ScoreInput, params: RoadParams) -> Scores:
    """``[B, P]`` 1/0 (label still predicted); value = share of the P points still correct."""
    model_fn, arrays = QU.require_model(inp, "quantus_road"), QU.Arrays.of(inp)
    a = road_maps(arrays.a, arrays.x.shape[1])

    def one(i: int, s: int) -> list[Any]:
        metric = road_metric(params)
        metric(**_call_kw(arrays, i, QU.FixedIdModel(model_fn, int(arrays.sample_id[i])), a[i:i + 1]))
        # Quantus averages over the batch (here one sample): {percentage: 0.0 or 1.0}
        return [[metric.evaluation_scores[p] for p in params.percentages]]

    rows = QU.per_sample(inp, "quantus_road", one)
    nan = [np.nan] * len(params.percentages)
    curve = torch.tensor([nan if r is None else r for r in rows], dtype=torch.float32)
    return Scores(values=torch.nanmean(curve, 1), curve=curve, points=tuple(p / 100 for p in params.percentages))


# -- RandomLogit --------------------------------------------------------------------------------------
class _Recorded(Exception):
    """Stops Quantus once it has asked for an explanation (the off-class is recorded)."""


@METRICS.register(summary="Quantus RandomLogit: SSIM of the map with the method's map for a random other class",
                  category="sanity", higher_is_better=False, needs=frozenset({"model", "explainer"}),
                  output="scalar", version="1", reference=f"Sixt et al. 2020 (ICML); {QUANTUS_REF}", params=None)
def quantus_random_logit(inp: ScoreInput, params: None) -> Scores:
    """``[B]`` Quantus' SSIM (over the flattened maps) of the map and the off-class map; NaN
    where either map is constant (Quantus refuses it)."""
    q, arrays = QU.quantus(), QU.Arrays.of(inp)
    require(inp.explain, "explain", "quantus_random_logit")
    b = inp.batch
    classes = int(QU.require_model(inp, "quantus_random_logit")(b.x[:1], b.sample_id[:1]).shape[1])
    if classes < 2:
        raise BenchError("quantus_random_logit needs a model with at least two classes")
    model = torch.nn.Identity().eval()  # Quantus passes the model to explain_func only; no forward
    sids = arrays.sample_id.tolist()
    off: dict[int, int] = {}

    def call(i: int, s: int, explain_func: Any) -> list[Any]:
        metric = q.RandomLogit(num_classes=classes, seed=s, return_aggregate=False, **_PLAIN)
        return metric(**_call_kw(arrays, i, model), explain_func=explain_func)

    def record(i: int, s: int) -> list[Any]:
        def explain_func(model: Any, inputs: np.ndarray, targets: np.ndarray, **kw: Any) -> np.ndarray:
            off[sids[i]] = int(targets[0])
            raise _Recorded
        try:
            call(i, s, explain_func)
        except _Recorded:
            pass
        return [None]

    # pass 1: Quantus draws each sample's off-class (seeded per sample); pass 2 scores the method's
    # maps for those classes, from one re-explanation of the batch on the rotated-logit model
    QU.per_sample(inp, "quantus_random_logit", record)
    shifts = tuple((sid, (off[sid] - int(y)) % classes) for sid, y in zip(sids, arrays.y.tolist()) if sid in off)
    other = inp.explain(b.x, on=variant(QU.ShiftLogits(shifts))).detach().float().cpu().numpy()  # type: ignore[misc]
    dead = QU.constant(other)

    def score(i: int, s: int) -> list[Any]:
        if dead[i]:
            return [None]
        return call(i, s, lambda model, inputs, targets, **kw: other[i:i + 1])

    return Scores(values=_values(QU.per_sample(inp, "quantus_random_logit", score)))
