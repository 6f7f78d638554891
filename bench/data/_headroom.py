"""The ``headroom`` layout of ``shapes`` (generator version 3): small targets anywhere, plus
salient clutter.

Per sample (all draws from ``sample_generator(seed, index, "shapes/<split>/headroom")``, laid
out by :func:`_layout`, then the pixel noise):

1. the target (class ``index % 10``) at radius ``image_size * U(scale_min, scale_max)``, any
   rotation, its centre uniform over every position that keeps the object inside the image;
2. 0..``n_clutter_max`` clutter objects (:data:`~bench.data._render.CLUTTER`: bars, V and Z
   strokes, no class) of the same radius range, painted in the target's own colour, so they
   are exactly as salient as the target. Each keeps ``max(2, size // 16)`` px (Chebyshev) away
   from the target, i.e. more than the pointing game's default tolerance (2/3/4 px at
   32/48/64): pointing at clutter is never a hit. Clutter objects keep 1 px from each other.
   A slot whose 16 candidate placements all collide stays empty;
3. 0..``n_distractors_max`` faint distractors as in the ``centred`` layout, clear of the
   target and of the clutter;
4. background colour, stripes and pixel noise as in the ``centred`` layout, scaled by the
   texture level.

The target is painted last, without anti-aliasing, so its mask is exact; the mask is the target
only (clutter has its own masks, :meth:`~bench.data.shapes.SyntheticShapes.clutter_masks`).
"""

from __future__ import annotations

import math

import torch

from bench.data import _render
from bench.data._scene import N_CANDIDATES, backdrop, distractor_masks, draw, noise_sigma, place_clear, placements

CLUTTER_CANDIDATES = 16  # placements tried per clutter object before it is dropped
CLUTTER_FIELDS = 8       # uniforms per candidate: cx, cy, radius, kind, heading, bend, mirror, width


def _layout(n_dist: int, n_clutter: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the per-sample uniform draws, in draw order."""
    return {"place": (1, 4), "bg": (3,), "texture": (5,), "target_rgb": (16, 3),
            "n_clutter": (1,), "clutter": (n_clutter, CLUTTER_CANDIDATES, CLUTTER_FIELDS),
            "n_dist": (1,), "dist": (n_dist, N_CANDIDATES, 10), "dist_rgb": (n_dist, 16, 3),
            "dist_contrast": (n_dist,)}


def clutter_masks(u: torch.Tensor, params, size: int) -> torch.Tensor:
    """``[M, 8]`` uniforms -> ``[M, H, W]`` clutter masks, each fully inside the image.

    The radius range is the target's (``scale_min``..``scale_max`` of ``size``); the stroke
    half-width is 0.18..0.25 of the radius (at least 0.6 px), as thick as the thin class parts.
    """
    s = float(size)
    radius = s * (params.scale_min + (params.scale_max - params.scale_min) * u[:, 2])
    halfwidth = (radius * (0.18 + 0.07 * u[:, 7])).clamp_min(0.6)
    margin = radius + halfwidth + 0.5
    centre = margin[:, None] + (s - 2 * margin).clamp_min(0)[:, None] * u[:, :2]
    kind = (u[:, 3] * len(_render.CLUTTER)).long().clamp_max(len(_render.CLUTTER) - 1)
    segs = _render.clutter_segments(kind, centre, radius, 2 * math.pi * u[:, 4], u[:, 5], u[:, 6])
    return _render.capsule_masks(segs, halfwidth, size)


def render_chunk(params, stage: str, indices: range, texture: float) -> dict[str, torch.Tensor]:
    """Render samples ``indices``. Returns images ``[C, 3, H, W]`` uint8, labels ``[C, 1]``,
    targets ``[C, 1, H, W]`` bool, distractors ``[C, H, W]`` bool and clutter ``[C, H, W]``
    bool. ``texture`` scales stripes and pixel noise (1.0: the ``centred`` layout's level)."""
    size = params.image_size
    u, noise = draw(params, stage, indices, _layout(params.n_distractors_max, params.n_clutter_max))
    labels = (torch.tensor(list(indices), dtype=torch.long) % len(_render.SHAPES))[:, None]
    place = placements(u["place"], params, 1)[:, 0]
    target = _render.target_masks(labels[:, 0], place, size)  # [C, H, W]
    gap = max(2, size // 16)
    keep_off = _render.dilate(target, gap)
    n_clutter = (u["n_clutter"][:, 0] * (params.n_clutter_max + 1)).long()
    clutter = place_clear(u["clutter"], n_clutter, keep_off, size,
                          lambda v: clutter_masks(v, params, size), 1).any(1)
    n_dist = (u["n_dist"][:, 0] * (params.n_distractors_max + 1)).long()
    dist = place_clear(u["dist"], n_dist, keep_off | _render.dilate(clutter, 1), size,
                       lambda v: distractor_masks(v, size), max(1, size // 32))

    img, bg = backdrop(u, dist, size, texture)
    rgb = _render.pick_contrasting(u["target_rgb"], bg, 0.3)[:, :, None, None]
    img = torch.where((clutter | target)[:, None], rgb, img)  # same colour: same contrast
    img = (img + noise_sigma(u["texture"], texture) * noise).clamp(0.0, 1.0)
    return {"images": (img * 255.0).round().to(torch.uint8), "labels": labels,
            "targets": target[:, None], "distractors": dist.any(1), "clutter": clutter}
