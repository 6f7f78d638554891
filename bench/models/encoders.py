"""Input encoders: analog images ``[B, C, H, W]`` -> spike trains ``[T, B, C, H, W]``.

Randomness: with ``sample_id`` given, sample b's uniforms come from
``per_sample_rand(seed, sample_id, "encode", (T, C, H, W))``, so its spikes are identical alone
or inside any batch, and repeated ids see identical spikes (faithfulness curves, captum and
attacks rely on this). With ``sample_id=None`` (training) the global torch RNG is used.

Gradient (straight-through on the expectation): a Poisson spike train is a step function of
the image, so its true gradient is zero almost everywhere. We define
``d spikes[t] / dx := d E[spikes[t]] / dx`` for every step t: the forward value is the sampled
spike, the backward value is the derivative of the firing probability. For the signed coding
``E[s] = sign(x) * min(|x| / 2, 1)``, so the gradient is 0.5 where ``|x| < 2`` and 0 beyond;
for the [0, 1] coding ``E[s] = clamp(p, 0, 1)``, gradient 1 inside (0, 1) and 0 outside.

Direct coding has no encoder: the analog input is the first layer's input at every step, and
the time-invariant first convolution is computed once (see :mod:`bench.models.arch`).

Sequence encodings (``frames``, ``events``; :func:`sequence_input`) read time-varying data whose
steps are folded into the channel axis (``shapes_motion``): the SNN reads step t's channels at
step t; the ANN twin reads their time average.
"""

from __future__ import annotations

import torch

from bench.errors import BenchError
from bench.seeding import per_sample_rand


def uniforms(x: torch.Tensor, T: int, sample_id: torch.Tensor | None, seed: int) -> torch.Tensor:
    """``[T, B, C, H, W]`` uniforms in [0, 1): per sample when ``sample_id`` is given, else global RNG."""
    B = x.shape[0]
    if sample_id is None:
        return torch.rand((T, *x.shape), device=x.device, dtype=x.dtype)
    r = per_sample_rand(seed, sample_id.reshape(B), "encode", (T, *x.shape[1:]), device=x.device)
    return r.to(x.dtype).transpose(0, 1)


def _straight_through(sampled: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Forward ``sampled`` ``[T, ...]``; backward the gradient of ``expected`` ``[...]`` at every step."""
    return sampled.detach() + (expected - expected.detach()).unsqueeze(0)


def poisson_signed(x: torch.Tensor, T: int, sample_id: torch.Tensor | None = None,
                   seed: int = 0) -> torch.Tensor:
    """The paper's signed rate coding of a normalized image.

    x: ``[B, C, H, W]`` mean/std-normalized. Returns ``[T, B, C, H, W]`` in {-1, 0, 1}:
    ``sign(x) * 1[r < |x| / 2]`` with r uniform, i.e. P(spike) = min(|x|/2, 1), drawn fresh at
    every step. (The reference code compares with ``<=``; the two differ on a null set only.)
    """
    expected = (x * 0.5).clamp(-1.0, 1.0)  # = sign(x) * min(|x|/2, 1), with slope 0.5 also at x = 0
    sampled = (uniforms(x, T, sample_id, seed) < expected.abs()).to(x.dtype) * torch.sign(x)
    return _straight_through(sampled, expected)


def poisson(p: torch.Tensor, T: int, sample_id: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Plain rate coding of intensities ``p`` ``[B, C, H, W]`` (clamped to [0, 1]) -> ``[T, B, C, H, W]`` in {0, 1}."""
    q = p.clamp(0.0, 1.0)
    sampled = (uniforms(p, T, sample_id, seed) < q).to(p.dtype)
    return _straight_through(sampled, q)


#: Encodings of time-varying input (time folded into channels, step-major: channel ``t * C + c``).
SEQUENCE_ENCODINGS = ("frames", "events")


def sequence_input(x: torch.Tensor, steps: int, T: int) -> torch.Tensor:
    """Time-folded input ``[B, steps * C, H, W]`` -> the first layer's input ``[T * B, C, H, W]``.

    An SNN (``T == steps``) gets step t's channels at step t (time-first, folded into the batch
    like every SNN tensor). An ANN (``T == 1``) gets the time average ``[B, C, H, W]``: it has no
    time axis to read steps on, and the average is the input a frame-based camera would give
    with an exposure of the whole sequence (a motion-blurred image, or for events the share of
    steps each pixel fired), the one static image that keeps every step's evidence; a channel
    stack would make the twin a different network (T times the first layer's inputs) whose
    Grad-CAM could no longer stand in for the SNN's. It is linear, so gradients reach every
    step equally: a twin's map explains all steps at once, as a static map should.
    """
    b, c, h, w = x.shape
    if c % steps:
        raise BenchError(f"input with {c} channels does not fold into {steps} steps")
    seq = x.reshape(b, steps, c // steps, h, w)
    if T == 1:
        return seq.mean(1)
    if T != steps:
        raise BenchError(f"an SNN of T={T} cannot read a sequence of {steps} steps")
    return seq.transpose(0, 1).reshape(steps * b, c // steps, h, w)
