"""L-infinity evasion attacks (FGSM, PGD), a random-sign noise control, and EOT gradients.

Every attack works in *pixel space*: the normalized input ``x`` is mapped back to ``[0, 1]``
images with the dataset's per-channel mean/std, perturbed there under ``||delta||_inf <= eps``
(eps in pixel units, e.g. 2/255), clamped to the valid range ``[0, 1]``, and normalized again.
A pixel budget ``eps`` is therefore ``eps / std[c]`` in channel ``c`` of the model input.

Why not ``captum.robust.PGD`` directly: it takes one scalar radius in the space it perturbs
(no per-channel std), draws its random start from the global RNG (a sample's start would
depend on the batch), has no expectation over stochastic encodings, and skips gradients below
1e-6 (a weak surrogate gradient would silently stop the attack). captum's FGSM/PGD serve as the
test oracle for the deterministic case instead (tests/test_attacks.py).

Models are called ``model(x [B, C, H, W], sample_id=[B], seed=int) -> logits [B, K]``; an SNN's
Poisson encoding is keyed by ``(seed, sample_id)``. EOT (expectation over transformation,
Athalye et al. 2018) averages the loss gradient over ``eot`` encoding seeds drawn from a stream
(:func:`eot_seeds`) that never contains the evaluation seed, so the attacker does not know the
exact spikes the model sees at test time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench.data.base import denormalize, normalize
from bench.errors import BenchError
from bench.seeding import derive_seed, per_sample_rand


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One attack configuration (hashable; part of the adversarial-example cache key).

    kind: "fgsm" (one sign step of size eps), "pgd" (Madry et al. 2018), or "noise"
        (uniform random sign at magnitude eps: the gradient-free control).
    steps: PGD iterations.  step_frac: PGD step size as a fraction of eps.
    random_start: PGD starts from a uniform point in the eps-ball (per-sample generator,
        stage "attack_init").
    eot: number of encoding seeds the loss gradient is averaged over (1 = plain gradient).
    """

    kind: Literal["fgsm", "pgd", "noise"] = "pgd"
    steps: int = 10
    step_frac: float = 0.25
    random_start: bool = True
    eot: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("fgsm", "pgd", "noise"):
            raise ValueError(f"unknown attack kind {self.kind!r} (known: fgsm, pgd, noise)")
        if self.steps < 1 or self.eot < 1:
            raise ValueError(f"steps and eot must be >= 1, got steps={self.steps}, eot={self.eot}")
        if self.step_frac <= 0:
            raise ValueError(f"step_frac must be > 0, got {self.step_frac}")


def check_eps(eps: float) -> float:
    """Validate an L-inf budget in pixel units; a BenchError names a likely 0-255 mix-up."""
    if not 0.0 <= eps <= 1.0:
        raise BenchError(f"epsilon must be in [0, 1] pixel units (e.g. 2/255), got {eps}")
    return float(eps)


def eps_to_normalized(eps: float, std: Sequence[float]) -> torch.Tensor:
    """Pixel budget -> per-channel budget in normalized input units: ``[C, 1, 1]`` = eps / std."""
    return check_eps(eps) / torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)


def eot_seeds(seed: int, n: int, step: int = 0) -> list[int]:
    """The ``n`` encoding seeds an EOT gradient averages over at attack step ``step``.

    Fresh seeds every step (the attack must not overfit a few encodings), drawn from a stream
    disjoint from the run seed that the evaluation uses.
    """
    return [derive_seed(seed, step * n + k, "attack_eot") for k in range(n)]


def loss_grad(model: nn.Module, pixels: torch.Tensor, y: torch.Tensor, sample_id: torch.Tensor,
              mean: Sequence[float], std: Sequence[float], seeds: Sequence[int]) -> torch.Tensor:
    """Gradient of the mean cross-entropy over ``seeds`` w.r.t. ``pixels`` ``[B, C, H, W]``.

    One backward per seed (memory does not grow with EOT); each sample's loss is summed over
    the batch, so a sample's gradient does not depend on its batch neighbours.
    """
    grad = torch.zeros_like(pixels)
    with torch.enable_grad():
        for s in seeds:
            p = pixels.detach().requires_grad_(True)
            logits = model(normalize(p, mean, std), sample_id=sample_id, seed=int(s))
            loss = F.cross_entropy(logits, y, reduction="sum")
            grad += torch.autograd.grad(loss, p)[0]
    return grad / len(seeds)


def _project(pixels: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Back into the eps-ball around ``clean`` and the valid pixel range [0, 1]."""
    return torch.minimum(torch.maximum(pixels, clean - eps), clean + eps).clamp(0.0, 1.0)


def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sample_id: torch.Tensor, eps: float,
           spec: AttackSpec, mean: Sequence[float], std: Sequence[float], seed: int = 0) -> torch.Tensor:
    """Untargeted attack of ``x`` ``[B, C, H, W]`` (normalized) against the labels ``y`` ``[B]``.

    Returns the adversarial input, normalized like ``x``; its pixel-space version lies within
    ``eps`` of the clean image (L-inf) and in ``[0, 1]``. ``y`` must be the ground truth.
    Deterministic given (seed, sample_id): the random start and the noise control draw from
    per-sample generators, and EOT seeds from :func:`eot_seeds`.
    """
    eps = check_eps(eps)
    clean = denormalize(x.detach(), mean, std).clamp(0.0, 1.0)
    if eps == 0.0:
        return normalize(clean, mean, std)
    if spec.kind == "noise":
        u = per_sample_rand(seed, sample_id, "attack_noise", tuple(x.shape[1:]), device=x.device)
        return normalize(_project(clean + eps * torch.sign(u - 0.5), clean, eps), mean, std)
    if spec.kind == "fgsm":
        grad = loss_grad(model, clean, y, sample_id, mean, std, eot_seeds(seed, spec.eot))
        return normalize(_project(clean + eps * grad.sign(), clean, eps), mean, std)
    adv = clean
    if spec.random_start:
        u = per_sample_rand(seed, sample_id, "attack_init", tuple(x.shape[1:]), device=x.device)
        adv = _project(clean + eps * (2.0 * u - 1.0), clean, eps)
    for step in range(spec.steps):
        grad = loss_grad(model, adv, y, sample_id, mean, std, eot_seeds(seed, spec.eot, step))
        adv = _project(adv + spec.step_frac * eps * grad.sign(), clean, eps)
    return normalize(adv, mean, std)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, sample_id: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``[B]`` predicted classes of ``x`` (normalized) under the run's encoding seed."""
    return model(x, sample_id=sample_id, seed=seed).argmax(-1)
