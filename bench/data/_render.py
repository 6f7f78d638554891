"""Vectorized rasterization of the synthetic shapes (inside tests on a pixel-centre grid).

A pixel ``(row, col)`` belongs to a shape when its centre ``(col + 0.5, row + 0.5)`` lies inside
it, so masks are exact and the painted object equals its mask (no anti-aliasing). Every target
class is defined in canonical coordinates ``(u, v)`` inside the unit disk; a placement
``(cx, cy, r, theta)`` maps pixel centres into that frame. Distractors are unions of capsules
(thick segments): lines, scribbles and small blobs, none of which resembles a target class;
so is the ``headroom`` layout's target-sized clutter (:data:`CLUTTER`: bars, V and Z strokes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Inside = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _polygon(vertices: list[tuple[float, float]]) -> Inside:
    """Even-odd crossing test against a fixed polygon (canonical coordinates)."""
    vs = [(float(a), float(b)) for a, b in vertices]

    def inside(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(u, dtype=torch.bool)
        for (ax, ay), (bx, by) in zip(vs, vs[1:] + vs[:1]):
            if ay == by:
                continue  # a horizontal edge never crosses a horizontal ray
            crosses = (ay > v) != (by > v)
            x_cross = ax + (bx - ax) * (v - ay) / (by - ay)
            out ^= crosses & (u < x_cross)
        return out

    return inside


def _rects(*rects: tuple[float, float, float, float]) -> Inside:
    """Union of axis-aligned rectangles ``(u0, v0, u1, v1)``."""
    def inside(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(u, dtype=torch.bool)
        for u0, v0, u1, v1 in rects:
            out |= (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)
        return out

    return inside


def _star(points: int, outer: float, inner: float) -> Inside:
    verts = []
    for k in range(2 * points):
        rad = outer if k % 2 == 0 else inner
        ang = -math.pi / 2 + k * math.pi / points
        verts.append((rad * math.cos(ang), rad * math.sin(ang)))
    return _polygon(verts)


def _disk(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u * u + v * v <= 0.85 ** 2


def _ring(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    rho2 = u * u + v * v
    return (rho2 <= 0.95 ** 2) & (rho2 >= 0.5 ** 2)


def _dumbbell(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    bells = ((u.abs() - 0.55) ** 2 + v * v) <= 0.4 ** 2
    return bells | ((u.abs() <= 0.55) & (v.abs() <= 0.15))


def _trefoil(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    out = u * u + v * v <= 0.3 ** 2  # the hub, so the lobes leave no hole between them
    for k in range(3):  # three round lobes, 120 degrees apart
        a = -math.pi / 2 + k * 2 * math.pi / 3
        out |= (u - 0.5 * math.cos(a)) ** 2 + (v - 0.5 * math.sin(a)) ** 2 <= 0.45 ** 2
    return out


def _crescent(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * u + v * v <= 0.95 ** 2) & ((u - 0.42) ** 2 + v * v > 0.75 ** 2)


#: Target classes (name -> inside test); every shape fits the unit disk. No two are rotations of
#: each other, and each stays recognisable at ~16 px across: square (confused with disk and
#: triangle), T and L shapes (confused with arrow, cross and H) were measured too similar for
#: a small CNN at 32x32 and left out.
SHAPES: dict[str, Inside] = {
    "disk": _disk,
    "ring": _ring,
    "triangle": _polygon([(0.0, -1.0), (0.866, 0.5), (-0.866, 0.5)]),
    "cross": _rects((-0.28, -0.95, 0.28, 0.95), (-0.95, -0.28, 0.95, 0.28)),
    "star": _star(5, 1.0, 0.42),
    "crescent": _crescent,
    "eitch": _rects((-0.65, -0.7, -0.25, 0.7), (0.25, -0.7, 0.65, 0.7), (-0.25, -0.18, 0.25, 0.18)),
    "dumbbell": _dumbbell,
    "trefoil": _trefoil,
    "arrow": _polygon([(-0.85, -0.18), (0.1, -0.18), (0.1, -0.6), (0.9, 0.0), (0.1, 0.6),
                       (0.1, 0.18), (-0.85, 0.18)]),
}


#: Clutter kinds of the ``headroom`` layout: thick open strokes that belong to no class. None is
#: closed or filled (so none passes for a disk, ring, triangle, star, crescent, trefoil or
#: dumbbell), none has a crossing (cross), parallel bars (eitch) or a head (arrow). Ring- and
#: cross-like clutter would repeat a class, and a Z/N stroke was measured too close to the eitch
#: at 32 px, so the family is: a straight bar, a V, and a zigzag (a sawtooth of three strokes).
CLUTTER = ("bar", "chevron", "zigzag")


def clutter_segments(kind: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor,
                     heading: torch.Tensor, bend: torch.Tensor, mirror: torch.Tensor) -> torch.Tensor:
    """Polylines of the :data:`CLUTTER` kinds, each inside the disk ``(centre, radius)``.

    kind: ``[M]`` index into :data:`CLUTTER`; centre: ``[M, 2]`` ``(x, y)`` px; radius, heading
    (radians), bend (in [0, 1]: the V's opening 60..100 degrees, the zigzag's amplitude
    0.2..0.35 radius) and mirror (0/1: which way the zigzag starts): ``[M]``. Returns capsule
    segments ``[M, 3, 4]`` for :func:`capsule_masks` (a bar repeats its one segment, a V its
    second).
    """
    m = kind.shape[0]
    # canonical points (units of radius), 4 per stroke: P0 -> P1 -> P2 -> P3
    bar = torch.tensor([[-0.9, 0.0], [0.9, 0.0], [0.9, 0.0], [0.9, 0.0]])
    half = math.radians(30.0) + math.radians(20.0) * bend  # half the V's opening
    arm = torch.stack([-0.6 + 1.2 * torch.cos(half), 1.2 * torch.sin(half)], 1)  # [M, 2]
    vertex = torch.tensor([-0.6, 0.0]).expand(m, 2)
    chevron = torch.stack([arm, vertex, arm * torch.tensor([1.0, -1.0]), arm * torch.tensor([1.0, -1.0])], 1)
    amp = (0.2 + 0.15 * bend) * torch.where(mirror > 0.5, -1.0, 1.0)  # [M]
    xs = torch.tensor([-0.9, -0.3, 0.3, 0.9]).expand(m, 4)
    ys = amp[:, None] * torch.tensor([-1.0, 1.0, -1.0, 1.0])
    zigzag = torch.stack([xs, ys], -1)
    pts = torch.where((kind == 0).view(-1, 1, 1), bar.expand(m, 4, 2),
                      torch.where((kind == 1).view(-1, 1, 1), chevron, zigzag))
    cos, sin = torch.cos(heading).view(-1, 1), torch.sin(heading).view(-1, 1)
    x = centre[:, None, 0] + radius.view(-1, 1) * (cos * pts[..., 0] - sin * pts[..., 1])
    y = centre[:, None, 1] + radius.view(-1, 1) * (sin * pts[..., 0] + cos * pts[..., 1])
    xy = torch.stack([x, y], -1)  # [M, 4, 2]
    return torch.cat([xy[:, :-1], xy[:, 1:]], -1)  # [M, 3, 4]


def pixel_grid(size: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``x`` (column) and ``y`` (row), each ``[1, H, W]``."""
    c = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    return c.view(1, 1, size).expand(1, size, size), c.view(1, size, 1).expand(1, size, size)


def target_masks(labels: torch.Tensor, place: torch.Tensor, size: int) -> torch.Tensor:
    """Rasterize one target per row.

    labels: ``[N]`` class indices into :data:`SHAPES`; place: ``[N, 4]`` ``(cx, cy, r, theta)``
    in pixels / radians. Returns ``[N, H, W]`` bool.
    """
    x, y = pixel_grid(size)
    out = torch.zeros(labels.shape[0], size, size, dtype=torch.bool)
    for k, inside in enumerate(SHAPES.values()):
        rows = (labels == k).nonzero().flatten()
        if rows.numel() == 0:
            continue
        cx, cy, r, th = (place[rows, i].view(-1, 1, 1) for i in range(4))
        dx, dy = x - cx, y - cy
        cos, sin = torch.cos(th), torch.sin(th)
        # rotate pixel offsets by -theta into the shape's frame, then scale to the unit disk
        u = (cos * dx + sin * dy) / r
        v = (-sin * dx + cos * dy) / r
        out[rows] = inside(u, v)
    return out


def capsule_masks(segments: torch.Tensor, halfwidth: torch.Tensor, size: int) -> torch.Tensor:
    """Union of thick segments per row.

    segments: ``[N, S, 4]`` endpoints ``(ax, ay, bx, by)`` in pixels; halfwidth: ``[N]``.
    Returns ``[N, H, W]`` bool: pixels whose centre is within ``halfwidth`` of any segment.
    """
    x, y = pixel_grid(size)
    out = torch.zeros(segments.shape[0], size, size, dtype=torch.bool)
    hw2 = (halfwidth * halfwidth).view(-1, 1, 1)
    for s in range(segments.shape[1]):
        if s > 0 and torch.equal(segments[:, s], segments[:, s - 1]):
            continue  # a repeated segment adds nothing
        ax, ay, bx, by = (segments[:, s, i].view(-1, 1, 1) for i in range(4))
        ex, ey = bx - ax, by - ay
        px, py = x - ax, y - ay  # [N, H, W]
        t = ((px * ex).add_(py * ey)).div_((ex * ex + ey * ey).clamp_min(1e-9)).clamp_(0.0, 1.0)
        dx, dy = px.sub_(t * ex), py.sub_(t * ey)
        out |= (dx.mul_(dx)).add_(dy.mul_(dy)) <= hw2
    return out


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``[N, H, W]`` bool -> the mask grown by ``radius`` pixels (square structuring element)."""
    if radius <= 0:
        return mask
    k = 2 * radius + 1
    return F.max_pool2d(mask.float().unsqueeze(1), k, stride=1, padding=radius).squeeze(1) > 0


def mask_to_box(mask: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]`` bool -> ``[N, 4]`` tight half-open boxes ``(x0, y0, x1, y1)``.

    An empty mask gives ``(0, 0, 0, 0)``.
    """
    n, h, w = mask.shape
    cols, rows = mask.any(1), mask.any(2)  # [N, W], [N, H]
    x0 = cols.int().argmax(1)
    x1 = w - cols.flip(1).int().argmax(1)
    y0 = rows.int().argmax(1)
    y1 = h - rows.flip(1).int().argmax(1)
    box = torch.stack([x0, y0, x1, y1], 1).float()
    return torch.where(mask.flatten(1).any(1, keepdim=True), box, torch.zeros_like(box))


LUMA = (0.299, 0.587, 0.114)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """``[..., 3]`` -> ``[...]`` Rec. 601 luma."""
    return rgb @ torch.tensor(LUMA, dtype=rgb.dtype)


def pick_contrasting(candidates: torch.Tensor, reference: torch.Tensor, min_contrast: float) -> torch.Tensor:
    """First of ``candidates`` ``[N, K, 3]`` whose luminance differs from ``reference`` ``[N, 3]``
    by at least ``min_contrast`` (the one differing most when none does). Returns ``[N, 3]``.

    Contrast is asked of the luminance, not of the RGB distance: a shape that differs from its
    background only in hue (red on green of equal brightness) is hard for small CNNs."""
    diff = (luminance(candidates) - luminance(reference)[:, None]).abs()  # [N, K]
    ok = diff >= min_contrast
    idx = torch.where(ok.any(1), ok.int().argmax(1), diff.argmax(1))
    return candidates[torch.arange(candidates.shape[0]), idx]


def fade(rgb: torch.Tensor, reference: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    """Move ``rgb`` ``[N, 3]`` towards ``reference`` ``[N, 3]`` until their luminance differs by at
    most ``contrast`` ``[N]`` (colours already closer are kept)."""
    diff = (luminance(rgb) - luminance(reference)).abs().clamp_min(1e-6)
    t = (contrast / diff).clamp(max=1.0)[:, None]
    return reference + t * (rgb - reference)
