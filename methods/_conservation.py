"""Conservation residual of a relevance-type explanation (private core; not a registered metric).

LRP-type rules redistribute the output relevance without creating or losing any (Bach et al.
2015, Eq. 2): ``sum_i R_i(input) = sum_j R_j(output)`` on bias-free layers. The residual is the
per-sample gap, relative to the output relevance's total magnitude, so that a contrastive output
relevance (CLRP: its sum is 0) still has a scale::

    residual[b] = |sum R_in[b] - sum R_out[b]| / max(sum |R_out[b]|, eps)
"""

from __future__ import annotations

import torch


def conservation_residual(r_in: torch.Tensor, r_out: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``r_in [B, ...]`` input relevance, ``r_out [B, ...]`` output relevance -> ``[B]`` residuals
    (0: conserved). Any further axes (time, channels, pixels, classes) are summed."""
    if r_in.shape[0] != r_out.shape[0]:
        raise ValueError(f"batch sizes differ: {r_in.shape[0]} vs {r_out.shape[0]}")
    s_in = r_in.detach().double().flatten(1).sum(1)
    out = r_out.detach().double().flatten(1)
    return (s_in - out.sum(1)).abs() / out.abs().sum(1).clamp_min(eps)
