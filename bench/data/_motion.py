"""Scene generation for ``shapes_motion``: a target moving along a smooth path, moving clutter.

The scene is rendered at ``T + 1`` instants ``k = 0..T`` (instant 0 is the frame before the
first step: the events of step t are the changes from instant t to instant t + 1). Per sample,
all draws come from ``sample_generator(seed, index, "shapes_motion/<split>")``, laid out by
:func:`_layout`, then the pixel noise (:func:`bench.data._scene.draw`):

1. the target (class ``index % 10``), radius ``image_size * U(scale_min, scale_max)``, a
   rotation that turns by at most 0.15 rad a step;
2. its path: a quadratic Bezier curve from a point on one side of the canvas, past a bent
   control point, to a point on the far side (start and end at 0.6-1.0 of the way from the centre
   to the edge of the area the object may occupy, at opposite angles +- 0.6 rad), so the object
   crosses the canvas. The progress along the curve grows with per-step speeds U(0.5, 1.5); with
   probability ``stop_prob`` the object stops for 1..T//3 + 1 steps;
3. 0..``n_clutter_max`` clutter objects (the ``headroom`` layout's bars, V and Z strokes, the
   target's colour), each moving in a straight line at constant speed, independently of the
   target (they may cross it: the target is painted last, so its mask stays exact);
4. 0..``n_distractors_max`` static faint distractors clear of every moving object's pixels,
   a static background (colour, stripes) and static pixel noise, as in ``shapes``.

Everything that moves is inside the image at every instant. The pixel noise is static, so a
DVS model (:func:`events_from_frames`) sees only what moves.
"""

from __future__ import annotations

import math

import torch

from bench.data import _render
from bench.data._scene import N_CANDIDATES, background, distractor_masks, draw, noise_sigma, place_clear

CLUTTER_FIELDS = 10  # kind, radius, heading, bend, mirror, width, x0, y0, x1, y1
LOG_EPS = 0.05       # log(luminance + eps): the DVS log intensity stays finite on black pixels


def _layout(p) -> dict[str, tuple[int, ...]]:
    """Shapes of the per-sample uniform draws, in draw order."""
    T, s = p.steps, p.image_size
    return {"shape": (3,), "path": (5,), "speed": (T,), "stop": (3,), "bg": (3,), "texture": (5,),
            "target_rgb": (16, 3), "n_clutter": (1,), "clutter": (p.n_clutter_max, CLUTTER_FIELDS),
            "n_dist": (1,), "dist": (p.n_distractors_max, N_CANDIDATES, 10),
            "dist_rgb": (p.n_distractors_max, 16, 3), "dist_contrast": (p.n_distractors_max,),
            "event_noise": (T, 2, s, s)}


def progress(speed: torch.Tensor, stop: torch.Tensor, stop_prob: float) -> torch.Tensor:
    """``[C, T]`` speed uniforms and ``[C, 3]`` stop uniforms -> ``[C, T + 1]`` progress in [0, 1]
    along the path at instants 0..T (0 at the start, 1 at the end, non-decreasing)."""
    c, T = speed.shape
    v = 0.5 + speed
    start = (stop[:, 1] * T).long().clamp_max(T - 1)
    length = 1 + (stop[:, 2] * (T // 3 + 1)).long().clamp_max(T // 3)
    k = torch.arange(T).view(1, T)
    halted = (stop[:, :1] < stop_prob) & (k >= start[:, None]) & (k < (start + length)[:, None])
    halted &= ~halted.all(1, keepdim=True)  # (never at T = 1: the object must get somewhere)
    v = torch.where(halted, torch.zeros_like(v), v)
    cum = torch.cat([torch.zeros(c, 1), v.cumsum(1)], 1)
    return cum / cum[:, -1:]


def target_path(u_path: torch.Tensor, s_k: torch.Tensor, radius: torch.Tensor, size: int) -> torch.Tensor:
    """``[C, 5]`` path uniforms, ``[C, T + 1]`` progress, ``[C]`` radii -> centres ``[C, T + 1, 2]``
    ``(x, y)`` px of a quadratic Bezier crossing the canvas (see the module doc), every point at
    least ``radius + 0.5`` px inside the image (the control polygon is, so the curve is)."""
    lo = radius + 0.5
    hi = size - lo
    centre, reach = size / 2.0, (hi - lo) / 2.0  # [C]
    a0 = 2 * math.pi * u_path[:, 0]
    a1 = a0 + math.pi + 1.2 * (u_path[:, 2] - 0.5)

    def point(angle: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        r = (reach * frac)[:, None]
        return centre + r * torch.stack([torch.cos(angle), torch.sin(angle)], 1)

    p0 = point(a0, 0.6 + 0.4 * u_path[:, 1])
    p1 = point(a1, 0.6 + 0.4 * u_path[:, 4])
    normal = torch.stack([-(p1 - p0)[:, 1], (p1 - p0)[:, 0]], 1)
    pc = (p0 + p1) / 2 + normal * (u_path[:, 3:4] - 0.5) * 0.6
    pc = torch.minimum(torch.maximum(pc, lo[:, None]), hi[:, None])
    t = s_k[..., None]  # [C, T + 1, 1]
    return (1 - t) ** 2 * p0[:, None] + 2 * (1 - t) * t * pc[:, None] + t ** 2 * p1[:, None]


def moving_clutter(u: torch.Tensor, params, instants: int) -> torch.Tensor:
    """``[M, 10]`` uniforms -> ``[M, instants, H, W]`` masks of clutter strokes moving in a
    straight line from one random position to another (same shapes and sizes as the
    ``headroom`` layout's clutter: :func:`bench.data._render.clutter_segments`)."""
    s, m = params.image_size, u.shape[0]
    radius = s * (params.scale_min + (params.scale_max - params.scale_min) * u[:, 1])
    halfwidth = (radius * (0.18 + 0.07 * u[:, 5])).clamp_min(0.6)
    margin = radius + halfwidth + 0.5
    room = (s - 2 * margin).clamp_min(0)[:, None]
    start, end = margin[:, None] + room * u[:, 6:8], margin[:, None] + room * u[:, 8:10]
    t = torch.linspace(0.0, 1.0, instants).view(1, instants, 1)
    centre = (start[:, None] + t * (end - start)[:, None]).reshape(-1, 2)  # [M * instants, 2]
    rep = lambda v: v.repeat_interleave(instants)
    kind = (u[:, 0] * len(_render.CLUTTER)).long().clamp_max(len(_render.CLUTTER) - 1)
    segs = _render.clutter_segments(rep(kind), centre, rep(radius), rep(2 * math.pi * u[:, 2]),
                                    rep(u[:, 3]), rep(u[:, 4]))
    return _render.capsule_masks(segs, rep(halfwidth), s).view(m, instants, s, s)


def render_chunk(params, stage: str, indices: range, texture: float) -> dict[str, torch.Tensor]:
    """Render samples ``indices`` at instants 0..T. Returns frames ``[C, T + 1, 3, H, W]`` uint8,
    labels ``[C]``, targets ``[C, T + 1, H, W]`` bool, track ``[C, T + 1, 2]`` ``(x, y)`` px,
    clutter ``[C, T + 1, H, W]`` bool and the event-noise uniforms ``[C, T, 2, H, W]``."""
    size, T = params.image_size, params.steps
    n = T + 1
    u, noise = draw(params, stage, indices, _layout(params))
    c = len(indices)
    labels = torch.tensor(list(indices), dtype=torch.long) % len(_render.SHAPES)
    radius = size * (params.scale_min + (params.scale_max - params.scale_min) * u["shape"][:, 0])
    track = target_path(u["path"], progress(u["speed"], u["stop"], params.stop_prob), radius, size)
    turn = 0.3 * (u["shape"][:, 2] - 0.5)  # rad per instant
    theta = 2 * math.pi * u["shape"][:, 1:2] + turn[:, None] * torch.arange(n)
    place = torch.stack([track[..., 0], track[..., 1], radius[:, None].expand(c, n), theta], -1)
    targets = _render.target_masks(labels.repeat_interleave(n), place.view(-1, 4), size).view(c, n, size, size)

    n_clutter = (u["n_clutter"][:, 0] * (params.n_clutter_max + 1)).long()
    clutter = torch.zeros(c, n, size, size, dtype=torch.bool)
    for slot in range(params.n_clutter_max):
        rows = (slot < n_clutter).nonzero().flatten()
        if rows.numel():
            clutter[rows] |= moving_clutter(u["clutter"][rows, slot], params, n)
    gap = max(2, size // 16)
    moving = _render.dilate((targets | clutter).any(1), gap)
    n_dist = (u["n_dist"][:, 0] * (params.n_distractors_max + 1)).long()
    dist = place_clear(u["dist"], n_dist, moving, size, lambda v: distractor_masks(v, size), max(1, size // 32))

    bg = 0.1 + 0.8 * u["bg"]
    base = background(u["texture"], bg, size, texture)
    for slot in range(dist.shape[1]):
        rgb = _render.pick_contrasting(u["dist_rgb"][:, slot], bg, 0.25)
        rgb = _render.fade(rgb, bg, 0.1 + 0.15 * u["dist_contrast"][:, slot])
        base = torch.where(dist[:, slot, None], rgb[:, :, None, None], base)
    rgb = _render.pick_contrasting(u["target_rgb"], bg, 0.3)[:, None, :, None, None]
    frames = torch.where((clutter | targets)[:, :, None], rgb, base[:, None])
    frames = (frames + (noise_sigma(u["texture"], texture) * noise)[:, None]).clamp(0.0, 1.0)
    return {"frames": (frames * 255.0).round().to(torch.uint8), "labels": labels, "targets": targets,
            "track": track, "clutter": clutter, "event_noise": u["event_noise"]}


def events_from_frames(frames: torch.Tensor, threshold: float, noise_u: torch.Tensor | None = None,
                       noise_rate: float = 0.0) -> torch.Tensor:
    """A DVS model: ``[C, T + 1, 3, H, W]`` frames in [0, 1] -> ``[C, T, 2, H, W]`` ON/OFF events.

    Each pixel keeps a reference log intensity ``log(luminance + 0.05)``, set at instant 0.
    At instant k it emits ``n = trunc((L_k - ref) / threshold)`` events (ON if n > 0, OFF if
    n < 0) and moves its reference by ``n * threshold``, so sub-threshold changes accumulate
    as in a real sensor (Lichtsteiner et al. 2008). Channel 0 of step k - 1 is 1 where the pixel
    emitted at least one ON event between instants k - 1 and k, channel 1 the same for OFF.
    Noise: independently, each (step, polarity, pixel) fires with probability ``noise_rate``
    (``noise_u``: ``[C, T, 2, H, W]`` uniforms)."""
    lum = _render.luminance(frames.movedim(2, -1))  # [C, T + 1, H, W]
    log_i = torch.log(lum.double() + LOG_EPS)
    ref = log_i[:, 0]
    out = []
    for k in range(1, frames.shape[1]):
        q = (log_i[:, k] - ref) / threshold
        # the 1e-9 nudge: a change of exactly n thresholds fires n events, so no rounding
        # residual of n * threshold fires a stray event at a later step without any change
        n = torch.trunc(q + 1e-9 * torch.sign(q))
        ref = ref + n * threshold
        out.append(torch.stack([n > 0, n < 0], 1))
    ev = torch.stack(out, 1)
    if noise_u is not None and noise_rate > 0:
        ev |= noise_u < noise_rate
    return ev.float()
