"""How smooth a map is: the spatial autocorrelation length (Kim & Panda 2021's "heatmap
smoothing effect" of the SNN Grad-CAM at shallow layers, made measurable).

The length is the distance, in input pixels, at which the map's radially averaged spatial
autocorrelation first falls below 1/e. A map of independent pixels scores < 1 (a delta map:
1 - 1/e = 0.63, the linear interpolation between lag 0 and lag 1); a Gaussian blob of standard
deviation ``s`` scores 2 ``s`` (its autocorrelation is a Gaussian of standard deviation
``s * sqrt(2)``); a map upsampled from a coarse layer scores about the layer's stride or more.

Definition, per map ``m`` ``[H, W]``: ``d = m - mean(m)``; the linear (zero-padded, not
circular) autocorrelation ``A(dy, dx) = sum d(y, x) d(y + dy, x + dx)`` by FFT, divided by
``A(0, 0)``; ``R(r)`` = the mean of ``A`` over the lags whose Euclidean length rounds to ``r``;
the first ``r`` with ``R(r) < 1/e``, linearly interpolated between ``r - 1`` and ``r``. The
biased estimator (no division by the overlap) is used on purpose: dividing by the overlap
makes the long lags, which rest on a few pixel pairs, noisy. A constant map has no
autocorrelation: NaN. A map that never falls below 1/e within the image scores the largest lag
measured (``min(H, W) - 1``).
"""

from __future__ import annotations

import math

import torch

from bench.registry import METRICS
from metrics.base import ScoreInput, Scores

_INV_E = math.exp(-1.0)


def radial_autocorrelation(maps: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` maps -> ``[B, R]`` radially averaged normalized autocorrelation, ``R[:, 0] = 1``
    (NaN rows for constant maps); ``R = min(H, W)`` radii 0 .. min(H, W) - 1."""
    b, h, w = maps.shape
    d = maps.double() - maps.double().mean((-2, -1), keepdim=True)
    f = torch.fft.rfft2(d, s=(2 * h, 2 * w))  # zero-padded: linear, not circular, correlation
    ac = torch.fft.irfft2(f * f.conj(), s=(2 * h, 2 * w))  # [B, 2H, 2W], lag (0,0) at [0, 0]
    zero = ac[:, 0, 0].clone()
    dy = torch.fft.fftfreq(2 * h, 1.0 / (2 * h)).double()  # signed lags 0, 1, ..., -1
    dx = torch.fft.fftfreq(2 * w, 1.0 / (2 * w)).double()
    radius = torch.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2).round().long()  # [2H, 2W]
    n_r = min(h, w)
    keep = radius < n_r
    idx = radius[keep]
    sums = torch.zeros(b, n_r, dtype=torch.float64).index_add_(1, idx, ac[:, keep])
    counts = torch.zeros(n_r, dtype=torch.float64).index_add_(0, idx, torch.ones_like(idx, dtype=torch.float64))
    mean = sums / counts
    scale = torch.where(zero > 1e-12 * (maps.double().abs().amax((-2, -1)) ** 2 * h * w).clamp_min(1e-300),
                        zero, torch.full_like(zero, float("nan")))
    return mean / scale[:, None]


def autocorrelation_length(maps: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` -> ``[B]`` float: the 1/e autocorrelation length in pixels (see module doc)."""
    r = radial_autocorrelation(maps.detach())  # [B, R]; a score, not a differentiable quantity
    out = torch.full((maps.shape[0],), float("nan"), dtype=torch.float64)
    for i in range(r.shape[0]):
        row = r[i]
        if not torch.isfinite(row[0]):
            continue
        below = torch.nonzero(row < _INV_E)
        if not len(below):
            out[i] = float(r.shape[1] - 1)
            continue
        k = int(below[0])  # k >= 1 since row[0] == 1
        a, c = float(row[k - 1]), float(row[k])
        out[i] = (k - 1) + (a - _INV_E) / (a - c)
    return out.float()


@METRICS.register(summary="Spatial autocorrelation length of the map (px at which it falls below 1/e)",
                  category="complexity", higher_is_better=False, needs=frozenset(), output="scalar",
                  per_timestep=True, scope="explanation", version="1",
                  reference="Kim & Panda 2021 (Sci. Rep.), the 'heatmap smoothing effect'; "
                            "the 1/e correlation length of spatial statistics")
def spatial_autocorrelation_length(inp: ScoreInput, params: None) -> Scores:
    """Maps ``[B, H, W]`` -> ``[B]`` lengths in input pixels; NaN for a constant map."""
    return Scores(values=autocorrelation_length(inp.maps))
