"""Scene generation for the ``shapes`` family: per-sample uniforms -> rendered chunks.

Each sample draws all its random numbers from ``sample_generator(seed, index, stage)`` (one
flat vector of uniforms laid out by :func:`_layout`, then the pixel noise), so a sample depends
only on ``(seed, stage, index)`` and the params. :func:`render_chunk` renders a range of
samples at once, vectorized over the chunk; ``n_targets`` is 1 (``shapes``) or 2 (``shapes_pair``,
one target per vertical half). This is the ``centred`` layout; :mod:`bench.data._headroom`
builds the ``headroom`` layout from the same pieces (:func:`draw`, :func:`placements`,
:func:`place_clear`, :func:`backdrop`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bench.data import _render
from bench.seeding import sample_generator

N_CANDIDATES = 8  # placements tried per distractor before it is dropped

#: Background texture levels: the factor on the stripes' amplitude and the pixel noise's sigma
#: ("default" is the level of generator version 2; "none" leaves a flat colour).
TEXTURE: dict[str, float] = {"none": 0.0, "low": 0.5, "default": 1.0, "high": 2.0}


def _layout(n_targets: int, n_dist: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the per-sample uniform draws, in draw order."""
    return {"place": (n_targets, 4), "second_label": (1,), "bg": (3,), "texture": (5,),
            "target_rgb": (n_targets, 16, 3), "n_dist": (1,),
            "dist": (n_dist, N_CANDIDATES, 10), "dist_rgb": (n_dist, 16, 3),
            "dist_contrast": (n_dist,)}


def draw(params, stage: str, indices: range,
         layout: dict[str, tuple[int, ...]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-sample random numbers for ``indices``: ``{field: [C, *shape]}`` for the fields of
    ``layout`` (one flat uniform vector per sample, split in ``layout`` order) and pixel noise
    ``[C, 3, H, W]`` drawn after it from the same generator."""
    sizes = [math.prod(s) for s in layout.values()]
    size = params.image_size
    flat, noise = [], []
    for i in indices:
        g = sample_generator(params.seed, i, stage)
        flat.append(torch.rand(sum(sizes), generator=g))
        noise.append(torch.randn(3, size, size, generator=g))
    u = torch.stack(flat)
    fields = dict(zip(layout, u.split(sizes, dim=1)))
    return {k: v.reshape(len(indices), *layout[k]) for k, v in fields.items()}, torch.stack(noise)


def _labels(indices: range, second: torch.Tensor, n_targets: int) -> torch.Tensor:
    """``[C, n_targets]``: the first label cycles through the classes (balanced); a second
    target gets a different class chosen uniformly."""
    k = len(_render.SHAPES)
    first = torch.tensor(list(indices), dtype=torch.long) % k
    if n_targets == 1:
        return first[:, None]
    other = (first + 1 + (second[:, 0] * (k - 1)).long().clamp_max(k - 2)) % k
    return torch.stack([first, other], 1)


def placements(u: torch.Tensor, params, n_targets: int) -> torch.Tensor:
    """``[C, n_targets, 4]`` uniforms -> ``(cx, cy, r, theta)``; target t lives in the t-th of
    ``n_targets`` vertical bands (left/right halves for pairs), fully inside the image."""
    s = float(params.image_size)
    band = s / n_targets
    r = s * (params.scale_min + (params.scale_max - params.scale_min) * u[..., 2])
    margin = r + 0.5
    x_lo = torch.arange(n_targets, dtype=torch.float32) * band
    cx = x_lo + margin + (band - 2 * margin).clamp_min(0) * u[..., 0]
    cy = margin + (s - 2 * margin).clamp_min(0) * u[..., 1]
    return torch.stack([cx, cy, r, 2 * math.pi * u[..., 3]], -1)


def _distractor_segments(u: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[M, 10]`` uniforms -> capsule segments ``[M, 3, 4]`` and half-widths ``[M]``.

    kind 0: a straight line; 1: a scribble of three short segments with sharp turns;
    2: a small blob (a short fat capsule, far smaller than any target).
    """
    s = float(size)
    kind = (u[:, 0] * 3).long().clamp_max(2)
    start = torch.stack([0.1 + 0.8 * u[:, 1], 0.1 + 0.8 * u[:, 2]], 1) * s
    heading = 2 * math.pi * u[:, 3]
    seg_len = torch.where(kind == 0, s * (0.25 + 0.2 * u[:, 4]),
                          torch.where(kind == 1, s * (0.1 + 0.08 * u[:, 4]), s * 0.06 * u[:, 4]))
    thin = torch.full_like(seg_len, max(0.6, 0.02 * s))
    halfwidth = torch.where(kind == 2, s * (0.045 + 0.025 * u[:, 9]), thin)
    points, h = [start], heading
    for j in range(3):
        if j > 0:  # scribbles turn by 35..115 degrees, left or right
            h = h + (0.6 + 1.4 * u[:, 4 + j]) * torch.where(u[:, 6 + j] < 0.5, -1.0, 1.0)
        points.append(points[-1] + torch.stack([torch.cos(h), torch.sin(h)], 1) * seg_len[:, None])
    segs = torch.stack([torch.cat([a, b], 1) for a, b in zip(points, points[1:])], 1)  # [M, 3, 4]
    # lines and blobs are one segment: repeat the first instead of the scribble's turns
    segs = torch.where((kind == 1).view(-1, 1, 1), segs, segs[:, :1].expand_as(segs))
    return segs, halfwidth


def distractor_masks(u: torch.Tensor, size: int) -> torch.Tensor:
    """``[M, 10]`` uniforms -> ``[M, H, W]`` distractor masks (see :func:`_distractor_segments`)."""
    segs, hw = _distractor_segments(u, size)
    return _render.capsule_masks(segs, hw, size)


def place_clear(u: torch.Tensor, n_used: torch.Tensor, forbidden: torch.Tensor, size: int,
                rasterize: Callable[[torch.Tensor], torch.Tensor], gap: int) -> torch.Tensor:
    """Per slot, the first candidate placement clear of ``forbidden`` ``[C, H, W]``.

    u: ``[C, D, K, F]`` uniforms (D slots, K candidates each); n_used: ``[C]`` how many slots are
    used; rasterize: ``[M, F]`` uniforms -> ``[M, H, W]`` masks. Returns ``[C, D, H, W]``. A slot
    whose K candidates all touch ``forbidden`` stays empty; a placed object forbids its pixels
    grown by ``gap`` to the later slots. Candidates are rasterized only for rows still waiting
    for a placement (most succeed at the first try).
    """
    return place_clear_chosen(u, n_used, forbidden, size, rasterize, gap)[0]


def place_clear_chosen(u: torch.Tensor, n_used: torch.Tensor, forbidden: torch.Tensor, size: int,
                       rasterize: Callable[[torch.Tensor], torch.Tensor], gap: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`place_clear`, plus which candidate each slot kept: ``[C, D]`` long (-1: empty),
    for callers whose candidates carry more than a placement (a fragment's source image)."""
    c, d, k, _ = u.shape
    out = torch.zeros(c, d, size, size, dtype=torch.bool)
    chosen = torch.full((c, d), -1, dtype=torch.long)
    for slot in range(d):
        pending = slot < n_used
        for cand in range(k):
            rows = pending.nonzero().flatten()
            if rows.numel() == 0:
                break
            m = rasterize(u[rows, slot, cand])
            ok = m.flatten(1).any(1) & ~(m & forbidden[rows]).flatten(1).any(1)
            out[rows[ok], slot] = m[ok]
            chosen[rows[ok], slot] = cand
            pending[rows[ok]] = False
        forbidden = forbidden | _render.dilate(out[:, slot], gap)
    return out, chosen


def background(u: torch.Tensor, bg: torch.Tensor, size: int, strength: float = 1.0) -> torch.Tensor:
    """Base colour ``[C, 3]`` plus low-contrast luminance stripes -> ``[C, 3, H, W]``;
    ``strength`` scales the stripes' amplitude (:data:`TEXTURE`)."""
    x, y = _render.pixel_grid(size)
    amp, freq, ang, phase = (u[:, i].view(-1, 1, 1) for i in range(4))
    amp = (0.02 + 0.05 * amp) * strength
    freq = (2.0 + 5.0 * freq) / size  # 2..7 periods across the image
    ang = math.pi * ang
    wave = torch.sin(2 * math.pi * (freq * (x * torch.cos(ang) + y * torch.sin(ang)) + phase))
    return bg[:, :, None, None] + (amp * wave)[:, None]


def backdrop(u: dict[str, torch.Tensor], dist: torch.Tensor, size: int,
             strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The scene behind the salient objects, shared by both layouts: base colour, stripes
    (:func:`background`) and the faint distractors ``dist`` ``[C, D, H, W]`` bool, each in a
    colour that contrasts with the base and then fades towards it. ``u`` holds the ``bg``,
    ``texture``, ``dist_rgb`` and ``dist_contrast`` draws. Returns ``(image [C, 3, H, W],
    base colour [C, 3])``; the callers paint their targets (and clutter) over it."""
    bg = 0.1 + 0.8 * u["bg"]
    img = background(u["texture"], bg, size, strength)
    for slot in range(dist.shape[1]):
        rgb = _render.pick_contrasting(u["dist_rgb"][:, slot], bg, 0.25)
        rgb = _render.fade(rgb, bg, 0.1 + 0.15 * u["dist_contrast"][:, slot])
        img = torch.where(dist[:, slot, None], rgb[:, :, None, None], img)
    return img, bg


def noise_sigma(u: torch.Tensor, strength: float) -> torch.Tensor:
    """``[C, 5]`` texture uniforms -> pixel-noise standard deviation ``[C, 1, 1, 1]``."""
    return ((0.01 + 0.03 * u[:, 4]) * strength).view(-1, 1, 1, 1)


def render_chunk(params, stage: str, indices: range, n_targets: int,
                 texture: float = 1.0) -> dict[str, torch.Tensor]:
    """Render samples ``indices`` in the ``centred`` layout. Returns images ``[C, 3, H, W]``
    uint8, labels ``[C, n_targets]``, targets ``[C, n_targets, H, W]`` bool and distractors
    ``[C, H, W]`` bool. ``texture`` scales stripes and pixel noise (1.0: the original level)."""
    size = params.image_size
    u, noise = draw(params, stage, indices, _layout(n_targets, params.n_distractors_max))
    c = len(indices)
    labels = _labels(indices, u["second_label"], n_targets)
    place = placements(u["place"], params, n_targets)
    targets = _render.target_masks(labels.flatten(), place.view(-1, 4), size).view(c, n_targets, size, size)
    any_target = targets.any(1)
    gap = max(2, size // 16)
    n_dist = (u["n_dist"][:, 0] * (params.n_distractors_max + 1)).long()
    dist = place_clear(u["dist"], n_dist, _render.dilate(any_target, gap), size,
                       lambda v: distractor_masks(v, size), max(1, size // 32))

    img, bg = backdrop(u, dist, size, texture)
    for t in range(n_targets):
        rgb = _render.pick_contrasting(u["target_rgb"][:, t], bg, 0.3)
        img = torch.where(targets[:, t, None], rgb[:, :, None, None], img)
    img = (img + noise_sigma(u["texture"], texture) * noise).clamp(0.0, 1.0)
    return {"images": (img * 255.0).round().to(torch.uint8), "labels": labels,
            "targets": targets, "distractors": dist.any(1)}
