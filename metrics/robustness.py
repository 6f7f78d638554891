"""Robustness under L-inf attack: accuracy, an audit of attack strength, explanation stability.

Model-scope metrics (scored once per model; curve over epsilon, ``point`` = eps in [0, 1] pixel
units): ``adversarial_accuracy`` and the audit ``attack_success_whitebox``,
``attack_success_transfer``, ``attack_success_noise``, ``attack_zero_gradient``. The labels are
the ground truth. Success rates are over the samples the probed model classifies correctly on
the clean input (NaN for the others, so the rows record which samples were already wrong).

Explanation-scope metrics ``stability_*`` compare the clean map with the map the same method
gives for the attacked input. The attacked input is crafted white-box on ``method_model`` (the
model the method ran on: the ANN twin for ``ann_*`` methods), with the ground-truth label and
the same sample ids, so a Poisson SNN sees the same encoding seed for both inputs.

White-box attacks are PGD (default) or FGSM through BPTT and the straight-through encoder;
models with a stochastic (Poisson) encoding are attacked with EOT over ``eot`` encoding seeds.
Epsilon is converted through the dataset normalization ``inp.data_mean/data_std`` (when the
runner leaves them None: the statistics of the dataset named by the model's card).
Every attack goes through ``inp.attack`` (:class:`metrics.base.AttackFn`), which the runner
caches, so every metric and method of a batch on one model shares the adversarial examples;
the maps of the attacked inputs go through ``inp.explain``. The stability metrics return the
attacked inputs they compared in ``Scores.attacked`` (the report's clean-vs-attacked gallery).
The model-scope metrics take a :class:`~metrics.base.ModelScoreInput` (no maps). The warnings
of the audit: :func:`bench.attacks.audit.audit_warnings`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import torch

from bench.attacks import stability as st
from bench.attacks.core import AttackSpec, eot_seeds, loss_grad, predict
from bench.attacks.resolve import is_stochastic, norm_stats
from bench.data.base import denormalize
from bench.errors import BenchError
from bench.registry import METRICS, PlotStyle
from metrics._localization import default_tolerance, pointing_game
from metrics._ssim import spearman, ssim
from metrics.base import (
    METHOD_MODEL,
    PROBED,
    AttackedInputs,
    AttackFn,
    ModelRef,
    ModelScoreInput,
    ScoreInput,
    Scores,
    named_model,
    require,
)

#: Default budgets (x 1/255): where the zoo models differ. PGD-10 accuracy at 1/2/4/8 on the
#: first 128 shapes test samples (`python -m bench.attacks.sweep --n 128 --eps 1 2 4 8 --eot 1 8`):
#: vgg5_ann 98.4/96.9/78.1/26.6%, vgg5_snn_t8 88.3/76.6/57.8/13.3%, vgg5_snn_t8_poisson
#: 87.5/78.1/61.7/21.1% without EOT and 86.7/74.2/57.0/14.8% with EOT over 8 encodings.
EPS_255 = (1.0, 2.0, 4.0, 8.0)
ATTACK_REF = "Madry et al. 2018 (PGD); Athalye et al. 2018 (EOT)"
STABILITY_REF = "Ghorbani et al. 2019"


@dataclasses.dataclass(frozen=True)
class AttackParams:
    """epsilons: L-inf budgets in pixel units (0, 1].  attack: "pgd" or "fgsm".
    steps / step_frac / random_start: PGD iterations, step size as a fraction of eps, random start.
    eot: encoding seeds per gradient for stochastic (Poisson) models; deterministic ones use 1.
    """

    epsilons: tuple[float, ...] = tuple(e / 255 for e in EPS_255)
    attack: Literal["pgd", "fgsm"] = "pgd"
    steps: int = 10
    step_frac: float = 0.25
    random_start: bool = True
    eot: int = 8

    def __post_init__(self) -> None:
        if not self.epsilons or not all(0 < e <= 1 for e in self.epsilons):
            raise ValueError(f"epsilons must be budgets in (0, 1] pixel units (e.g. 2/255), got {self.epsilons}")
        AttackSpec(kind=self.attack, steps=self.steps, step_frac=self.step_frac, eot=self.eot)


@dataclasses.dataclass(frozen=True)
class TransferParams(AttackParams):
    """source: the model to craft on (empty = the probed model's twin; for an ANN, its SNN)."""

    source: str = ""


@dataclasses.dataclass(frozen=True)
class StabilityTopkParams(AttackParams):
    """frac: share of pixels that count as the top of a map."""

    frac: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.frac <= 1:
            raise ValueError(f"frac must be in (0, 1], got {self.frac}")


@dataclasses.dataclass(frozen=True)
class StabilityPointingParams(AttackParams):
    """tolerance: pointing-game radius in pixels; negative = 15 px scaled from 224 px images."""

    tolerance: float = -1.0


def _spec(params: AttackParams) -> AttackSpec:
    """The attack of ``params`` (``inp.attack`` uses EOT only on a stochastic encoding)."""
    return AttackSpec(kind=params.attack, steps=params.steps, step_frac=params.step_frac,
                      random_start=params.random_start, eot=params.eot)


def _attack_fn(inp: ModelScoreInput | ScoreInput, metric: str) -> AttackFn:
    require(inp.attack, "attack", metric)
    return inp.attack  # type: ignore[return-value]  # checked just above


def _outcomes(inp: ModelScoreInput, params: AttackParams, spec: AttackSpec, on: ModelRef, metric: str
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``clean_ok [B]`` and ``adv_ok [B, E]`` (bool) of the probed model, for examples crafted
    on ``on`` (the probed model itself for white-box and noise attacks)."""
    m, b, seed = inp.model, inp.batch, inp.seed
    attack = _attack_fn(inp, metric)
    clean_ok = predict(m, b.x, b.sample_id, seed) == b.y
    adv_ok = [predict(m, attack(spec, e, on), b.sample_id, seed) == b.y for e in params.epsilons]
    return clean_ok, torch.stack(adv_ok, 1)


def _whitebox(inp: ModelScoreInput, params: AttackParams, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _outcomes(inp, params, _spec(params), PROBED, metric)


def _success(clean_ok: torch.Tensor, adv_ok: torch.Tensor, points: tuple[float, ...]) -> Scores:
    """Success = misclassified after the attack, NaN where already wrong on the clean input."""
    curve = torch.where(clean_ok[:, None], (~adv_ok).float(), torch.full_like(adv_ok, float("nan"), dtype=torch.float32))
    return Scores(values=torch.nanmean(curve, 1), curve=curve, points=tuple(points))


@METRICS.register(summary="Accuracy under white-box L-inf attack vs eps (point 0 = clean); value = mean over eps > 0",
                  category="robustness", higher_is_better=True, needs=frozenset({"model"}),
                  output="curve", per_timestep=False, scope="model", version="1",
                  reference=ATTACK_REF, params=AttackParams, audit_role="accuracy",
                  plot_style=PlotStyle("accuracy under white-box attack", "black", "-"))
def adversarial_accuracy(inp: ModelScoreInput, params: AttackParams) -> Scores:
    """Per sample: 1 if correct on the clean input and still correct at each eps; ``[B, 1 + E]``."""
    clean_ok, adv_ok = _whitebox(inp, params, "adversarial_accuracy")
    curve = torch.cat([clean_ok[:, None], adv_ok & clean_ok[:, None]], 1).float()
    return Scores(values=curve[:, 1:].mean(1), curve=curve, points=(0.0, *params.epsilons))


@METRICS.register(summary="Audit: success rate of the white-box attack (EOT for Poisson input) vs eps",
                  category="robustness", higher_is_better=False, needs=frozenset({"model"}),
                  output="curve", per_timestep=False, scope="model", version="1",
                  reference=ATTACK_REF, params=AttackParams, audit_role="whitebox",
                  plot_style=PlotStyle("white-box success", "tab:red", "--"))
def attack_success_whitebox(inp: ModelScoreInput, params: AttackParams) -> Scores:
    """``[B, E]``: 1 if the white-box attack flips a correct prediction, NaN if already wrong."""
    return _success(*_whitebox(inp, params, "attack_success_whitebox"), params.epsilons)


@METRICS.register(summary="Audit: success rate of attacks crafted on the twin (ANN->SNN, SNN->ANN) vs eps",
                  category="robustness", higher_is_better=False, needs=frozenset({"model"}),
                  output="curve", per_timestep=False, scope="model", version="1",
                  reference="Sharmin et al. 2019 (transfer attacks on SNNs)", params=TransferParams,
                  source_model=lambda p: p.source, audit_role="transfer",
                  plot_style=PlotStyle("transfer success (crafted on the twin)", "tab:blue", "--",
                                       param_label="transfer success (crafted on {source})"))
def attack_success_transfer(inp: ModelScoreInput, params: TransferParams) -> Scores:
    """``[B, E]``: crafted white-box on the source model, evaluated on the probed model."""
    # the runner resolves the source like the probed model (suite dataset, cache, model seed)
    on = named_model(params.source)
    return _success(*_outcomes(inp, params, _spec(params), on, "attack_success_transfer"), params.epsilons)


@METRICS.register(summary="Audit: success rate of random-sign noise at the same eps (the gradient-free control)",
                  category="robustness", higher_is_better=False, needs=frozenset({"model"}),
                  output="curve", per_timestep=False, scope="model", version="1",
                  reference=ATTACK_REF, params=AttackParams, audit_role="noise",
                  plot_style=PlotStyle("random-noise success (control)", "tab:gray", "--"))
def attack_success_noise(inp: ModelScoreInput, params: AttackParams) -> Scores:
    """``[B, E]``: 1 if uniform random-sign noise of magnitude eps flips a correct prediction."""
    return _success(*_outcomes(inp, params, AttackSpec(kind="noise"), PROBED, "attack_success_noise"),
                    params.epsilons)


@METRICS.register(summary="Audit: share of input pixels whose (EOT) loss gradient is exactly zero at the clean input",
                  category="robustness", higher_is_better=False, needs=frozenset({"model"}),
                  output="scalar", per_timestep=False, scope="model", version="1",
                  reference="Athalye et al. 2018 (obfuscated gradients)", params=AttackParams,
                  audit_role="zero_gradient")
def attack_zero_gradient(inp: ModelScoreInput, params: AttackParams) -> Scores:
    """``[B]`` in [0, 1]; 1 = a sign-gradient attack cannot move the sample (gradient masking)."""
    m, b, seed = inp.model, inp.batch, inp.seed
    mean, std = norm_stats(m, inp.data_mean, inp.data_std)
    n = params.eot if is_stochastic(m, b.x, b.sample_id, seed) else 1
    pixels = denormalize(b.x, mean, std).clamp(0.0, 1.0)
    grad = loss_grad(m, pixels, b.y, b.sample_id, mean, std, eot_seeds(seed, n))
    return Scores(values=(grad == 0).flatten(1).float().mean(1))


# -- explanation stability ------------------------------------------------------------------
Compare = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def attacked_inputs(inp: ScoreInput | ModelScoreInput, params: AttackParams, on: ModelRef = METHOD_MODEL,
                    metric: str = "stability") -> AttackedInputs:
    """The inputs the stability metrics compare against: per eps of ``params``, ``batch.x``
    attacked white-box on ``on`` (default: the model the method ran on) with the ground-truth
    labels (EOT for Poisson input), normalized like ``batch.x``."""
    attack = _attack_fn(inp, metric)
    spec = _spec(params)
    return AttackedInputs(points=tuple(params.epsilons), inputs=tuple(attack(spec, e, on) for e in params.epsilons))


def _stability(inp: ScoreInput, params: AttackParams, compare: Compare, metric: str) -> Scores:
    """``compare(clean maps, attacked maps)`` per eps: curve ``[B, E]``, values = NaN-mean over eps.

    Per time step when the runner passes one step's maps (``inp.explain`` then returns that
    step's maps). The attacked inputs come back in ``Scores.attacked``."""
    require(inp.explain, "explain", metric)
    adv = attacked_inputs(inp, params, METHOD_MODEL, metric)
    cols = [compare(inp.maps, inp.explain(x_adv)) for x_adv in adv.inputs]  # type: ignore[misc]
    curve = torch.stack(cols, 1).float()
    return Scores(values=torch.nanmean(curve, 1), curve=curve, points=adv.points, attacked=adv)


# per_timestep: temporal methods (SAM, SNN Grad-CAM) are also scored step by step, clean step s
# against attacked step s (the paper's maps over time under attack). attacked: the metric
# compares maps of :func:`attacked_inputs` and returns them (the clean-vs-attacked gallery).
_STABLE = dict(category="robustness", output="curve", per_timestep=True, scope="explanation",
               version="1", reference=STABILITY_REF, attacked=True)


@METRICS.register(summary="Spearman rank correlation of the clean and attacked maps vs eps",
                  higher_is_better=True, needs=frozenset({"model", "explainer"}), params=AttackParams,
                  step_figure=True, **_STABLE)
def stability_spearman(inp: ScoreInput, params: AttackParams) -> Scores:
    """``[B, E]`` in [-1, 1]; NaN where a map is constant (no ranking)."""
    return _stability(inp, params, spearman, "stability_spearman")


@METRICS.register(summary="Share of the clean map's top pixels still on top after the attack vs eps",
                  higher_is_better=True, needs=frozenset({"model", "explainer"}), params=StabilityTopkParams,
                  **_STABLE)
def stability_topk(inp: ScoreInput, params: StabilityTopkParams) -> Scores:
    """``[B, E]`` in [0, 1]; chance level = ``frac``."""
    return _stability(inp, params, lambda a, b: st.topk_intersection(a, b, params.frac), "stability_topk")


@METRICS.register(summary="SSIM of the clean and attacked maps vs eps",
                  higher_is_better=True, needs=frozenset({"model", "explainer"}), params=AttackParams,
                  step_figure=True, **_STABLE)
def stability_ssim(inp: ScoreInput, params: AttackParams) -> Scores:
    """``[B, E]``; 1 = identical maps, about 0 for independent maps."""
    return _stability(inp, params, ssim, "stability_ssim")


@METRICS.register(summary="Center-of-mass shift between clean and attacked maps (fraction of the diagonal) vs eps",
                  higher_is_better=False, needs=frozenset({"model", "explainer"}), params=AttackParams,
                  **_STABLE)
def stability_com_shift(inp: ScoreInput, params: AttackParams) -> Scores:
    """``[B, E]`` in [0, 1]; NaN where a map is all zero."""
    return _stability(inp, params, st.com_shift, "stability_com_shift")


@METRICS.register(summary="Pointing-game hits kept under attack (among samples the clean map hits) vs eps",
                  higher_is_better=True, needs=frozenset({"model", "explainer", "mask"}),
                  params=StabilityPointingParams, **_STABLE)
def stability_pointing(inp: ScoreInput, params: StabilityPointingParams) -> Scores:
    """``[B, E]``: 1 if the attacked map still hits the mask, NaN where the clean map misses."""
    mask = inp.batch.mask
    if mask is None:
        raise BenchError("stability_pointing needs object masks, but the batch has none")
    tol = params.tolerance if params.tolerance >= 0 else default_tolerance(mask.shape[-2])

    def kept(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        hit_clean, hit_adv = pointing_game(a, mask, tol), pointing_game(b, mask, tol)
        return torch.where(hit_clean == 1, hit_adv, torch.full_like(hit_adv, float("nan")))

    return _stability(inp, params, kept, "stability_pointing")
