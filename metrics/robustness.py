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
Adversarial examples are cached (:mod:`bench.attacks.cache`), so every metric and method of a
batch shares them; the maps of the attacked inputs are shared through the run's memo
(:func:`metrics.base.explain_again`). The model-scope metrics take a
:class:`~metrics.base.ModelScoreInput` (no maps). The warnings of the audit:
:func:`bench.attacks.audit.audit_warnings`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal, Sequence

import torch
from torch import nn

from bench.attacks import stability as st
from bench.attacks.core import AttackSpec, eot_seeds, loss_grad, predict
from bench.attacks.cache import craft
from bench.attacks.resolve import is_stochastic, load_source, norm_stats, transfer_source_name
from bench.data.base import Batch, denormalize
from bench.errors import BenchError
from bench.registry import METRICS, PlotStyle
from metrics._ssim import spearman, ssim
from metrics.base import (AttackedInputs, ModelScoreInput, ScoreInput, Scores, attacked_inputs_key,
                          explain_again)
from metrics.localization import default_tolerance, pointing_game

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
class TopkParams(AttackParams):
    """frac: share of pixels that count as the top of a map."""

    frac: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.frac <= 1:
            raise ValueError(f"frac must be in (0, 1], got {self.frac}")


@dataclasses.dataclass(frozen=True)
class PointingParams(AttackParams):
    """tolerance: pointing-game radius in pixels; negative = 15 px scaled from 224 px images."""

    tolerance: float = -1.0


def _spec(params: AttackParams, stochastic: bool) -> AttackSpec:
    return AttackSpec(kind=params.attack, steps=params.steps, step_frac=params.step_frac,
                      random_start=params.random_start, eot=params.eot if stochastic else 1)


def _outcomes(inp: ModelScoreInput, params: AttackParams, source: nn.Module, spec: AttackSpec
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``clean_ok [B]`` and ``adv_ok [B, E]`` (bool) of the probed model, for examples crafted
    on ``source`` (the probed model itself for white-box and noise attacks)."""
    m, b, seed = inp.model, inp.batch, inp.seed
    mean, std = norm_stats(m, inp.data_mean, inp.data_std)
    clean_ok = predict(m, b.x, b.sample_id, seed) == b.y
    adv_ok = [predict(m, craft(source, b.x, b.y, b.sample_id, e, spec, mean, std, seed), b.sample_id, seed) == b.y
              for e in params.epsilons]
    return clean_ok, torch.stack(adv_ok, 1)


def _whitebox(inp: ModelScoreInput, params: AttackParams) -> tuple[torch.Tensor, torch.Tensor]:
    m, b = inp.model, inp.batch
    return _outcomes(inp, params, m, _spec(params, is_stochastic(m, b.x, b.sample_id, inp.seed)))


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
    clean_ok, adv_ok = _whitebox(inp, params)
    curve = torch.cat([clean_ok[:, None], adv_ok & clean_ok[:, None]], 1).float()
    return Scores(values=curve[:, 1:].mean(1), curve=curve, points=(0.0, *params.epsilons))


@METRICS.register(summary="Audit: success rate of the white-box attack (EOT for Poisson input) vs eps",
                  category="robustness", higher_is_better=False, needs=frozenset({"model"}),
                  output="curve", per_timestep=False, scope="model", version="1",
                  reference=ATTACK_REF, params=AttackParams, audit_role="whitebox",
                  plot_style=PlotStyle("white-box success", "tab:red", "--"))
def attack_success_whitebox(inp: ModelScoreInput, params: AttackParams) -> Scores:
    """``[B, E]``: 1 if the white-box attack flips a correct prediction, NaN if already wrong."""
    return _success(*_whitebox(inp, params), params.epsilons)


@METRICS.register(summary="Audit: success rate of attacks crafted on the twin (ANN->SNN, SNN->ANN) vs eps",
                  category="robustness", higher_is_better=False, needs=frozenset({"model"}),
                  output="curve", per_timestep=False, scope="model", version="1",
                  reference="Sharmin et al. 2019 (transfer attacks on SNNs)", params=TransferParams,
                  audit_role="transfer",
                  plot_style=PlotStyle("transfer success (crafted on the twin)", "tab:blue", "--",
                                       param_label="transfer success (crafted on {source})"))
def attack_success_transfer(inp: ModelScoreInput, params: TransferParams) -> Scores:
    """``[B, E]``: crafted white-box on the source model, evaluated on the probed model."""
    b = inp.batch
    name = transfer_source_name(inp.model, params.source)
    # the runner's loader resolves the source like the probed model (suite dataset, cache,
    # model seed); outside a run, the default resolution
    src = inp.load_model(name) if inp.load_model is not None else load_source(name, b.x.device)
    spec = _spec(params, is_stochastic(src, b.x, b.sample_id, inp.seed))
    return _success(*_outcomes(inp, params, src, spec), params.epsilons)


@METRICS.register(summary="Audit: success rate of random-sign noise at the same eps (the gradient-free control)",
                  category="robustness", higher_is_better=False, needs=frozenset({"model"}),
                  output="curve", per_timestep=False, scope="model", version="1",
                  reference=ATTACK_REF, params=AttackParams, audit_role="noise",
                  plot_style=PlotStyle("random-noise success (control)", "tab:gray", "--"))
def attack_success_noise(inp: ModelScoreInput, params: AttackParams) -> Scores:
    """``[B, E]``: 1 if uniform random-sign noise of magnitude eps flips a correct prediction."""
    return _success(*_outcomes(inp, params, inp.model, AttackSpec(kind="noise")), params.epsilons)


@METRICS.register(summary="Audit: share of input pixels whose (EOT) loss gradient is exactly zero at the clean input",
                  category="robustness", higher_is_better=False, needs=frozenset({"model"}),
                  output="scalar", per_timestep=False, scope="model", version="1",
                  reference="Athalye et al. 2018 (obfuscated gradients)", params=AttackParams,
                  audit_role="zero_gradient")
def attack_zero_gradient(inp: ModelScoreInput, params: AttackParams) -> Scores:
    """``[B]`` in [0, 1]; 1 = a sign-gradient attack cannot move the sample (gradient masking)."""
    m, b, seed = inp.model, inp.batch, inp.seed
    mean, std = norm_stats(m, inp.data_mean, inp.data_std)
    n = _spec(params, is_stochastic(m, b.x, b.sample_id, seed)).eot
    pixels = denormalize(b.x, mean, std).clamp(0.0, 1.0)
    grad = loss_grad(m, pixels, b.y, b.sample_id, mean, std, eot_seeds(seed, n))
    return Scores(values=(grad == 0).flatten(1).float().mean(1))


# -- explanation stability ------------------------------------------------------------------
Compare = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def attacked_inputs(model: nn.Module, batch: Batch, params: AttackParams, seed: int = 0,
                    data_mean: Sequence[float] | None = None, data_std: Sequence[float] | None = None
                    ) -> list[torch.Tensor]:
    """The inputs the stability metrics compare against: per eps of ``params``, ``batch.x``
    attacked white-box on ``model`` with the ground-truth labels (EOT for Poisson input),
    normalized like ``batch.x``: a list of E tensors ``[B, C, H, W]``. Cached
    (:func:`bench.attacks.cache.craft`), so the metrics and the runner's gallery share them."""
    mean, std = norm_stats(model, data_mean, data_std)
    spec = _spec(params, is_stochastic(model, batch.x, batch.sample_id, seed))
    return [craft(model, batch.x, batch.y, batch.sample_id, e, spec, mean, std, seed) for e in params.epsilons]


def _stability(inp: ScoreInput, params: AttackParams, compare: Compare) -> Scores:
    """``compare(clean maps, attacked maps)`` per eps: curve ``[B, E]``, values = NaN-mean over eps.

    Per time step when the runner passes one step's maps and a step's ``explain_fn``. The
    attacked inputs are recorded in the memo for the runner's gallery (``attacked=True``)."""
    m, key = inp.method_model, inp.method_model_key
    if m is None:  # a direct call that gives only the probed model: nothing names it in the memo
        m, key = inp.model, ""
    if m is None or inp.explain_fn is None:
        raise BenchError("stability metrics need the method's model and explain_fn")
    xs = attacked_inputs(m, inp.batch, params, inp.seed, inp.data_mean, inp.data_std)
    where = attacked_inputs_key(inp, params)
    if inp.memo is not None and where is not None:
        inp.memo.put(where, AttackedInputs(points=tuple(params.epsilons), inputs=tuple(xs)))
    cols = [compare(inp.maps, explain_again(inp, m, key, x_adv)) for x_adv in xs]
    curve = torch.stack(cols, 1).float()
    return Scores(values=torch.nanmean(curve, 1), curve=curve, points=tuple(params.epsilons))


# per_timestep: temporal methods (SAM, SNN Grad-CAM) are also scored step by step, clean step s
# against attacked step s (the paper's maps over time under attack). attacked: the metric
# compares maps of :func:`attacked_inputs` and records them in the memo (the runner's
# clean-vs-attacked gallery shows them).
_STABLE = dict(category="robustness", output="curve", per_timestep=True, scope="explanation",
               version="1", reference=STABILITY_REF, attacked=True)


@METRICS.register(summary="Spearman rank correlation of the clean and attacked maps vs eps",
                  higher_is_better=True, needs=frozenset({"model", "explainer"}), params=AttackParams,
                  step_figure=True, **_STABLE)
def stability_spearman(inp: ScoreInput, params: AttackParams) -> Scores:
    """``[B, E]`` in [-1, 1]; NaN where a map is constant (no ranking)."""
    return _stability(inp, params, spearman)


@METRICS.register(summary="Share of the clean map's top pixels still on top after the attack vs eps",
                  higher_is_better=True, needs=frozenset({"model", "explainer"}), params=TopkParams,
                  **_STABLE)
def stability_topk(inp: ScoreInput, params: TopkParams) -> Scores:
    """``[B, E]`` in [0, 1]; chance level = ``frac``."""
    return _stability(inp, params, lambda a, b: st.topk_intersection(a, b, params.frac))


@METRICS.register(summary="SSIM of the clean and attacked maps vs eps",
                  higher_is_better=True, needs=frozenset({"model", "explainer"}), params=AttackParams,
                  step_figure=True, **_STABLE)
def stability_ssim(inp: ScoreInput, params: AttackParams) -> Scores:
    """``[B, E]``; 1 = identical maps, about 0 for independent maps."""
    return _stability(inp, params, ssim)


@METRICS.register(summary="Center-of-mass shift between clean and attacked maps (fraction of the diagonal) vs eps",
                  higher_is_better=False, needs=frozenset({"model", "explainer"}), params=AttackParams,
                  **_STABLE)
def stability_com_shift(inp: ScoreInput, params: AttackParams) -> Scores:
    """``[B, E]`` in [0, 1]; NaN where a map is all zero."""
    return _stability(inp, params, st.com_shift)


@METRICS.register(summary="Pointing-game hits kept under attack (among samples the clean map hits) vs eps",
                  higher_is_better=True, needs=frozenset({"model", "explainer", "mask"}),
                  params=PointingParams, **_STABLE)
def stability_pointing(inp: ScoreInput, params: PointingParams) -> Scores:
    """``[B, E]``: 1 if the attacked map still hits the mask, NaN where the clean map misses."""
    mask = inp.batch.mask
    if mask is None:
        raise BenchError("stability_pointing needs object masks, but the batch has none")
    tol = params.tolerance if params.tolerance >= 0 else default_tolerance(mask.shape[-2])

    def kept(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        hit_clean, hit_adv = pointing_game(a, mask, tol), pointing_game(b, mask, tol)
        return torch.where(hit_clean == 1, hit_adv, torch.full_like(hit_adv, float("nan")))

    return _stability(inp, params, kept)
