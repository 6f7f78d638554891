"""Metrics over time: explanations scored against ground truth that moves (``shapes_motion``).

All need per-step masks (``needs = {"step_mask"}``; the runner skips them on static datasets).

- **Per-step localization** (``step_pointing_game``, ``step_energy_pointing_game``,
  ``step_mask_auroc``): the functions of :mod:`metrics._localization`, with step t's map scored
  against step t's mask (``batch.step_mask[:, t]``). A method without per-step maps has its one
  map scored against every step's mask (the runner broadcasts it), so static baselines get the
  same per-step rows. The time-aggregated row (empty ``timestep``) scores the aggregated map
  against the union of the step masks (where the object was at some step).
- **Tracking** (``tracking_lag``, ``tracking_residual``): the centre of mass of each step's map
  against the object's trajectory (the centroids of the step masks). For each lag L in ``-max_lag..max_lag``, the
  mean distance between the map's centre at step t + L and the object at step t (over the steps
  where both exist); the lag is the L of least distance (ties: the smaller |L|, then the
  negative one), the residual that least distance in px. L > 0: the map follows the object L
  steps late. The curve of ``tracking_lag`` is the distance per lag. A map that ignores time has
  no lag: a method without per-step maps, or per-step maps whose centre stays within
  ``still_px`` of its mean at every step, score NaN; their residual is the distance at lag 0.
  (Minimizing the distance over lags is the cross-correlation of the two paths with the
  positions' scale kept: a centre that moves in step but stays off the object is not a match.)
- **Temporal faithfulness** (``step_deletion``, ``step_deletion_all``): delete (set to the
  dataset mean, i.e. 0 in the normalized input: for events, no event) the ``fraction`` most
  salient pixels of step t's map, in step t's input channels only (``step_deletion``) or in
  every step's (``step_deletion_all``); the score is the drop of the probability of the class
  predicted on the clean input. A step map that explains its own step's evidence gets a large
  ``step_deletion`` at that step; ``step_deletion_all`` is its ceiling with the same pixels.
  The aggregated row deletes the aggregated map's pixels at every step in both.
  Inputs are time-folded ``[B, T * C, H, W]`` (channel ``t * C + c``; :mod:`bench.data.motion`).
"""

from __future__ import annotations

import dataclasses

import torch

from bench.errors import BenchError
from bench.registry import METRICS
from metrics import _localization as L
from metrics._maps import descending_rank
from metrics.base import ScoreInput, Scores
from metrics.localization import PointingParams

NAN = float("nan")
_NEEDS = frozenset({"step_mask"})


def step_region(inp: ScoreInput) -> torch.Tensor:
    """``[B, H, W]`` bool: the mask of ``inp.timestep`` (the union of the steps for None)."""
    b = inp.batch
    if b.step_mask is None:
        raise BenchError("this metric needs per-step masks (a time-varying dataset such as shapes_motion)")
    if inp.timestep is None:
        return b.step_mask.any(1)
    if not 0 <= inp.timestep < b.step_mask.shape[1]:
        raise BenchError(f"time step {inp.timestep} of the maps is outside the data's "
                         f"{b.step_mask.shape[1]} steps (the model's T must equal the data's)")
    return b.step_mask[:, inp.timestep]


@METRICS.register(summary="Pointing game of each step's map against that step's mask",
                  category="localization", higher_is_better=True, needs=_NEEDS, output="scalar",
                  per_timestep=True, scope="explanation", version="1",
                  reference="Zhang et al. 2018, IJCV; per-step masks: this benchmark",
                  params=PointingParams, over_time="step")
def step_pointing_game(inp: ScoreInput, params: PointingParams) -> Scores:
    if params.region != "mask":
        raise BenchError("step_pointing_game scores against the step masks (region 'mask' only)")
    tol = params.tolerance
    if tol is None:
        tol = L.default_tolerance(inp.maps.shape[1], params.ref_tolerance, params.ref_size)
    return Scores(values=L.pointing_game(inp.maps, step_region(inp).to(inp.maps.device), tol))


@METRICS.register(summary="Share of each step's map mass inside that step's mask",
                  category="localization", higher_is_better=True, needs=_NEEDS, output="scalar",
                  per_timestep=True, scope="explanation", version="1",
                  reference="Wang et al. 2020, Score-CAM; per-step masks: this benchmark", over_time="step")
def step_energy_pointing_game(inp: ScoreInput, params: None) -> Scores:
    return Scores(values=L.energy_pointing_game(inp.maps, step_region(inp).to(inp.maps.device)))


@METRICS.register(summary="ROC-AUC of each step's map as a detector of that step's object pixels",
                  category="localization", higher_is_better=True, needs=_NEEDS, output="scalar",
                  per_timestep=True, scope="explanation", version="1",
                  reference="Fawcett 2006; per-step masks: this benchmark", over_time="step")
def step_mask_auroc(inp: ScoreInput, params: None) -> Scores:
    return Scores(values=L.mask_auroc(inp.maps, step_region(inp).to(inp.maps.device)))


# -- tracking ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TrackingParams:
    """max_lag: lags -max_lag..max_lag are tried (at most T - 2, so every lag keeps 2 steps).
    still_px: a per-step map whose centre of mass never leaves a disk of this radius (px) around
    its mean ignores time (no lag)."""

    max_lag: int = 3
    still_px: float = 0.5

    def __post_init__(self) -> None:
        if self.max_lag < 0 or self.still_px < 0:
            raise ValueError("max_lag and still_px must be >= 0")


def centre_of_mass(maps: torch.Tensor) -> torch.Tensor:
    """``[..., H, W]`` non-negative maps -> ``[..., 2]`` ``(x, y)`` px of pixel centres weighted by
    the map (NaN for an all-zero map)."""
    h, w = maps.shape[-2:]
    m = maps.double()
    mass = m.sum((-2, -1))
    cx = (m.sum(-2) * (torch.arange(w, dtype=torch.float64, device=m.device) + 0.5)).sum(-1)
    cy = (m.sum(-1) * (torch.arange(h, dtype=torch.float64, device=m.device) + 0.5)).sum(-1)
    com = torch.stack([cx, cy], -1) / mass.unsqueeze(-1)
    return torch.where((mass > 0).unsqueeze(-1), com, torch.full_like(com, NAN)).float()


def lag_distances(centres: torch.Tensor, track: torch.Tensor, lags: list[int]) -> torch.Tensor:
    """Mean distance per lag: centres ``[T, B, 2]`` (NaN where undefined), track ``[T, B, 2]`` ->
    ``[B, len(lags)]``: for lag L, the mean over t of ``|centres[t + L] - track[t]|`` (NaN where
    no step has both)."""
    T = centres.shape[0]
    out = []
    for lag in lags:
        a = centres[max(lag, 0):T + min(lag, 0)]
        b = track[max(-lag, 0):T - max(lag, 0)]
        d = (a - b).norm(dim=-1)  # [T - |L|, B]
        ok = ~torch.isnan(d)
        mean = torch.where(ok, d, torch.zeros_like(d)).sum(0) / ok.sum(0)
        out.append(torch.where(ok.any(0), mean, torch.full_like(mean, NAN)))
    return torch.stack(out, 1)


def tracking(steps: torch.Tensor | None, maps: torch.Tensor, track: torch.Tensor, max_lag: int,
             still_px: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """The tracking scores of one batch: ``(lag [B], residual [B], distance per lag [B, P], lags)``.

    steps: ``[T, B, H, W]`` per-step maps or None; maps: ``[B, H, W]`` the aggregated map (used
    when ``steps`` is None); track: ``[T, B, 2]`` the object's ``(x, y)`` per step."""
    T = track.shape[0]
    k = max(0, min(max_lag, T - 2))
    lags = sorted(range(-k, k + 1), key=lambda v: (abs(v), v))  # tie order: |L| first
    moving = steps is not None
    centres = centre_of_mass(steps) if moving else centre_of_mass(maps).unsqueeze(0).expand(T, -1, -1)
    if moving and steps.shape[0] != T:
        raise BenchError(f"{steps.shape[0]} steps of maps for {T} steps of data (the model's T must equal the data's)")
    dist = lag_distances(centres, track.to(centres.device), lags)  # [B, P] in tie order
    best = torch.where(torch.isnan(dist), torch.full_like(dist, float("inf")), dist).argmin(1)
    lag = torch.tensor(lags, dtype=torch.float32, device=dist.device)[best]
    residual = dist.gather(1, best[:, None])[:, 0]
    spread = (centres - centres.nanmean(0, keepdim=True)).norm(dim=-1)  # [T, B]
    still = ~(spread > still_px).any(0)  # NaN steps (empty maps) never count as moving
    no_lag = still | torch.isnan(residual) if moving else torch.ones_like(still)
    lag = torch.where(no_lag, torch.full_like(lag, NAN), lag)
    residual = torch.where(no_lag, dist[:, lags.index(0)], residual)
    order = sorted(range(len(lags)), key=lambda i: lags[i])  # the curve in lag order
    return lag, residual, dist[:, order], [lags[i] for i in order]


def _track(inp: ScoreInput) -> torch.Tensor:
    """``[T, B, 2]`` the object's path: the centroids of the step masks (the visible object's
    centre, what a map's centre of mass is compared with: the path point ``batch.track`` of an
    asymmetric shape such as the crescent is off its pixels' centre, by an offset that turns with
    the shape), else ``batch.track``."""
    b = inp.batch
    if b.step_mask is not None:
        return centre_of_mass(b.step_mask.transpose(0, 1).float())
    if b.track is None:
        raise BenchError("tracking needs per-step masks or a track (a time-varying dataset)")
    return b.track.transpose(0, 1).float()


@METRICS.register(summary="Delay (steps) at which the maps' centre of mass best follows the object (NaN: ignores time)",
                  category="temporal", higher_is_better=False, needs=_NEEDS, output="curve",
                  per_timestep=False, scope="explanation", version="1",
                  reference="this benchmark (minimum path distance over lags)", params=TrackingParams, over_time="lag")
def tracking_lag(inp: ScoreInput, params: TrackingParams) -> Scores:
    lag, _, dist, lags = tracking(inp.steps, inp.maps, _track(inp), params.max_lag, params.still_px)
    return Scores(values=lag, curve=dist, points=tuple(float(v) for v in lags))


@METRICS.register(summary="Distance (px) between the maps' centre of mass and the object at the best lag",
                  category="temporal", higher_is_better=False, needs=_NEEDS, output="scalar",
                  per_timestep=False, scope="explanation", version="1",
                  reference="this benchmark (minimum path distance over lags)", params=TrackingParams, over_time="residual")
def tracking_residual(inp: ScoreInput, params: TrackingParams) -> Scores:
    _, residual, _, _ = tracking(inp.steps, inp.maps, _track(inp), params.max_lag, params.still_px)
    return Scores(values=residual)


# -- temporal faithfulness --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StepDeletionParams:
    """fraction: share of the image's pixels deleted (the most salient ones, row-major ties)."""

    fraction: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")


def delete_pixels(x: torch.Tensor, maps: torch.Tensor, steps: int, step: int | None, fraction: float) -> torch.Tensor:
    """``x`` ``[B, steps * C, H, W]`` with the ``fraction`` most salient pixels of ``maps``
    ``[B, H, W]`` set to 0 in step ``step``'s channels (every step's for None)."""
    b, c, h, w = x.shape
    k = max(1, int(round(fraction * h * w)))
    top = (descending_rank(maps) < k).view(b, 1, 1, h, w)
    sel = torch.zeros(1, steps, 1, 1, 1, dtype=torch.bool, device=x.device)
    sel[:, slice(None) if step is None else step] = True
    seq = x.reshape(b, steps, c // steps, h, w)
    return torch.where(top.to(x.device) & sel, torch.zeros_like(seq), seq).reshape(b, c, h, w)


def _deletion_drop(inp: ScoreInput, params: StepDeletionParams, only_step: bool) -> Scores:
    if inp.model_fn is None:
        raise BenchError("temporal deletion needs the probed model (model_fn)")
    if inp.batch.step_mask is None:
        raise BenchError("temporal deletion needs a time-varying dataset (per-step masks)")
    x, ids = inp.batch.x, inp.batch.sample_id
    T = inp.batch.step_mask.shape[1]
    if x.shape[1] % T:
        raise BenchError(f"input of {x.shape[1]} channels does not fold into {T} steps")
    step = inp.timestep if only_step else None
    with torch.no_grad():
        clean = inp.model_fn(x, ids).float().softmax(-1)
        cls = clean.argmax(-1, keepdim=True)
        cut = inp.model_fn(delete_pixels(x, inp.maps, T, step, params.fraction), ids).float().softmax(-1)
    return Scores(values=(clean.gather(1, cls) - cut.gather(1, cls))[:, 0])


@METRICS.register(summary="Class-probability drop when step t's map's top pixels are deleted at step t only",
                  category="faithfulness", higher_is_better=True, needs=frozenset({"step_mask", "model"}),
                  output="scalar", per_timestep=True, scope="explanation", version="1",
                  reference="this benchmark (deletion, Petsiuk et al. 2018, restricted to one step)",
                  params=StepDeletionParams, over_time="step")
def step_deletion(inp: ScoreInput, params: StepDeletionParams) -> Scores:
    return _deletion_drop(inp, params, only_step=True)


@METRICS.register(summary="Class-probability drop when step t's map's top pixels are deleted at every step",
                  category="faithfulness", higher_is_better=True, needs=frozenset({"step_mask", "model"}),
                  output="scalar", per_timestep=True, scope="explanation", version="1",
                  reference="this benchmark (deletion, Petsiuk et al. 2018)", params=StepDeletionParams)
def step_deletion_all(inp: ScoreInput, params: StepDeletionParams) -> Scores:
    return _deletion_drop(inp, params, only_step=False)
