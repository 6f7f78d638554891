"""Scene rendering of the ``digits`` family: scikit-learn's 8x8 handwritten digits, one whole
digit per scene among fragments of other digits (the "cluttered MNIST" construction).

Geometry. A source image ``[8, 8]`` (ink in [0, 1], scikit-learn's 0..16 divided by 16) is
placed as a square of ``side`` px with its top-left corner at ``(x0, y0)`` px; canvas pixel
``(row, col)`` reads the source at ``((col + 0.5 - x0) * 8 / side, (row + 0.5 - y0) * 8 / side)``
in source pixel units, bilinearly, zero outside the 8x8 grid (``grid_sample`` with
``align_corners=False``). A fragment reads only a square window ``[wx, wx + w) x [wy, wy + w)``
of its source (``w < 8`` source px) at the same px-per-source-px scale as the scene's digit;
outside the window it has no ink. Strokes are the pixels whose sampled ink is ``>= threshold``:
they are painted in one flat colour, without anti-aliasing, so the target's mask is exactly
its visible pixels, as in ``shapes``.

Per sample (all uniforms from ``sample_generator(seed, index, "digits/<split>")``, laid out by
:func:`layout`, then the pixel noise): the target image (class ``index % 10``, an image of that
class in the split's pool), its side and position (fully inside the canvas); 0..``n_fragments_max``
fragments, each with up to :data:`FRAGMENT_CANDIDATES` candidate placements, the first one with
enough ink (:func:`min_fragment_px`) and clear of the target by ``max(2, size // 16)`` px
(more than the pointing game's tolerance, so pointing at a fragment is never a hit) being kept;
background colour, stripes and pixel noise as in ``shapes`` (:func:`bench.data._scene.backdrop`).
"""

from __future__ import annotations

import functools
import hashlib

import torch
import torch.nn.functional as F

from bench.data import _render
from bench.data._scene import backdrop, draw, noise_sigma, place_clear_chosen

SOURCE_PX = 8              # scikit-learn's digits are 8x8
FRAGMENT_CANDIDATES = 16   # placements tried per fragment slot before it stays empty
FRAGMENT_FIELDS = 6        # uniforms per candidate: source, window side, window x, y, canvas x, y


@functools.lru_cache(maxsize=1)
def source_digits() -> tuple[torch.Tensor, torch.Tensor, str]:
    """scikit-learn's bundled digits: images ``[1797, 8, 8]`` float ink in [0, 1], labels
    ``[1797]`` long, and a short sha256 of both (part of the dataset fingerprint, so a changed
    copy of the data can never pass for this one). No download: the data ships with sklearn."""
    from sklearn.datasets import load_digits  # imported here: sklearn is slow to import

    d = load_digits()
    images = torch.as_tensor(d.images, dtype=torch.float32) / 16.0
    labels = torch.as_tensor(d.target, dtype=torch.long)
    digest = hashlib.sha256(d.images.astype("uint8").tobytes() + d.target.astype("uint8").tobytes())
    return images, labels, digest.hexdigest()[:12]


@functools.lru_cache(maxsize=4)
def pools(pool_seed: int, test_fraction: float, val_fraction: float) -> dict[str, torch.Tensor]:
    """Disjoint source-image pools per split: ``{split: [P] long}`` indices into
    :func:`source_digits`, sorted. Stratified: each class's images are permuted once with
    ``pool_seed``; the first ``round(n_c * test_fraction)`` go to test, the next
    ``round(n_c * val_fraction)`` to val, the rest to train. The split depends on nothing else
    (not on the scene seed or sizes), so no test digit image is ever in a training scene."""
    _, labels, _ = source_digits()
    g = torch.Generator().manual_seed(pool_seed)
    out: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}
    for k in range(int(labels.max()) + 1):
        idx = (labels == k).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test, n_val = round(len(idx) * test_fraction), round(len(idx) * val_fraction)
        out["test"].append(idx[:n_test])
        out["val"].append(idx[n_test:n_test + n_val])
        out["train"].append(idx[n_test + n_val:])
    return {s: torch.cat(v).sort().values for s, v in out.items()}


def layout(n_fragments: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the per-sample uniform draws, in draw order (names as ``_scene.backdrop`` reads them)."""
    return {"target": (4,), "bg": (3,), "texture": (5,), "target_rgb": (16, 3), "n_frag": (1,),
            "frag": (n_fragments, FRAGMENT_CANDIDATES, FRAGMENT_FIELDS)}


def sample_ink(images: torch.Tensor, window: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor,
               px_per_src: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear ink of source windows on the canvas.

    images: ``[M, 8, 8]`` ink in [0, 1]; window: ``[M, 3]`` ``(wx, wy, w)`` in source px (the
    whole digit is ``(0, 0, 8)``); x0, y0: ``[M]`` canvas px of the window's top-left corner;
    px_per_src: ``[M]`` canvas px per source px. Returns ``[M, H, W]`` ink, zero outside the window.
    """
    x, y = _render.pixel_grid(size)  # [1, H, W] pixel centres
    sx = window[:, 0].view(-1, 1, 1) + (x - x0.view(-1, 1, 1)) / px_per_src.view(-1, 1, 1)
    sy = window[:, 1].view(-1, 1, 1) + (y - y0.view(-1, 1, 1)) / px_per_src.view(-1, 1, 1)
    # grid_sample's normalized coordinates (align_corners=False): -1 and 1 are the grid's outer edges
    grid = torch.stack([sx, sy], -1) * (2.0 / SOURCE_PX) - 1.0
    ink = F.grid_sample(images[:, None], grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False)[:, 0]
    w = window[:, 2].view(-1, 1, 1)
    inside = ((sx >= window[:, 0].view(-1, 1, 1)) & (sx < window[:, 0].view(-1, 1, 1) + w)
              & (sy >= window[:, 1].view(-1, 1, 1)) & (sy < window[:, 1].view(-1, 1, 1) + w))
    return ink * inside


def target_place(u: torch.Tensor, params) -> torch.Tensor:
    """``[C, 4]`` uniforms -> ``[C, 3]`` ``(x0, y0, side)`` px: side ``size * U(digit_min,
    digit_max)``, the square anywhere fully inside the canvas (u[:, 0] picks the image)."""
    s = float(params.image_size)
    side = s * (params.digit_min + (params.digit_max - params.digit_min) * u[:, 1])
    return torch.stack([u[:, 2] * (s - side), u[:, 3] * (s - side), side], 1)


def min_fragment_px(size: int) -> int:
    """Fewest stroke pixels a fragment must show (6 at 32 px, scaled with the area): a window
    over the paper's margin or a stroke's tip would be a speck, not a fragment."""
    return max(1, round(6 * (size / 32) ** 2))


def fragment_masks(u: torch.Tensor, images: torch.Tensor, params) -> torch.Tensor:
    """``[M, 7]`` rows ``(6 uniforms, px_per_src)`` and their source images ``[M, 8, 8]`` ->
    ``[M, H, W]`` fragment strokes (all False when the window shows too little ink).

    The window's side is ``8 * U(fragment_min, fragment_max)`` source px, anywhere in the 8x8
    grid; it is drawn at the scene digit's scale, anywhere fully inside the canvas."""
    size = params.image_size
    scale = u[:, 6]
    w = SOURCE_PX * (params.fragment_min + (params.fragment_max - params.fragment_min) * u[:, 1])
    window = torch.stack([u[:, 2] * (SOURCE_PX - w), u[:, 3] * (SOURCE_PX - w), w], 1)
    extent = w * scale
    x0, y0 = u[:, 4] * (size - extent).clamp_min(0), u[:, 5] * (size - extent).clamp_min(0)
    strokes = sample_ink(images, window, x0, y0, scale, size) >= params.threshold
    enough = strokes.flatten(1).sum(1) >= min_fragment_px(size)
    return strokes & enough.view(-1, 1, 1)


def render_chunk(params, stage: str, indices: range, pool: torch.Tensor,
                 texture: float) -> dict[str, torch.Tensor]:
    """Render samples ``indices`` of a split whose source images are ``pool`` ``[P]``.

    Returns images ``[C, 3, H, W]`` uint8, labels ``[C]``, targets ``[C, H, W]`` bool (the
    digit's strokes), fragments ``[C, H, W]`` bool, sources ``[C]`` (the digit's index into
    :func:`source_digits`), fragment_sources ``[C, D]`` (-1: an empty slot) and place ``[C, 3]``
    (the digit's ``(x0, y0, side)`` px).
    """
    size = params.image_size
    images, labels_all, _ = source_digits()
    u, noise = draw(params, stage, indices, layout(params.n_fragments_max))
    c = len(indices)
    labels = torch.tensor(list(indices), dtype=torch.long) % 10
    # the target: an image of class `label` from the pool (balanced classes, any writer)
    pool_labels = labels_all[pool]
    pos = torch.empty(c, dtype=torch.long)
    for k in range(10):
        rows = (labels == k).nonzero().flatten()
        members = (pool_labels == k).nonzero().flatten()
        pick = (u["target"][rows, 0] * len(members)).long().clamp_max(len(members) - 1)
        pos[rows] = members[pick]
    sources = pool[pos]
    place = target_place(u["target"], params)
    whole = torch.tensor([0.0, 0.0, float(SOURCE_PX)]).expand(c, 3)
    target = sample_ink(images[sources], whole, place[:, 0], place[:, 1], place[:, 2] / SOURCE_PX,
                        size) >= params.threshold

    # fragments: another image of the pool (never the target's own), at the digit's scale
    d = params.n_fragments_max
    frag_u = u["frag"]
    other = (frag_u[..., 0] * (len(pool) - 1)).long().clamp_max(len(pool) - 2)
    other = other + (other >= pos.view(-1, 1, 1)).long()  # skip the target's position in the pool
    frag_src = pool[other]  # [C, D, K]
    scale = (place[:, 2] / SOURCE_PX).view(-1, 1, 1, 1).expand(c, d, FRAGMENT_CANDIDATES, 1)
    # the candidate's source index rides along as a column, so the rasterizer can look it up
    rows_u = torch.cat([frag_u, scale, frag_src[..., None].float()], -1)
    n_frag = (u["n_frag"][:, 0] * (d + 1)).long()
    keep_off = _render.dilate(target, max(2, size // 16))

    frags, frag_sources = place_fragments(rows_u, n_frag, keep_off, images, params)

    empty = torch.zeros(c, 0, size, size, dtype=torch.bool)  # no faint distractors in this family
    img, bg = backdrop(u, empty, size, texture)
    rgb = _render.pick_contrasting(u["target_rgb"], bg, 0.3)[:, :, None, None]
    fragments = frags.any(1)
    img = torch.where((fragments | target)[:, None], rgb, img)  # one colour: fragments as salient as the digit
    img = (img + noise_sigma(u["texture"], texture) * noise).clamp(0.0, 1.0)
    return {"images": (img * 255.0).round().to(torch.uint8), "labels": labels, "targets": target,
            "fragments": fragments, "sources": sources, "fragment_sources": frag_sources, "place": place}


def place_fragments(u: torch.Tensor, n_used: torch.Tensor, forbidden: torch.Tensor, images: torch.Tensor,
                    params) -> tuple[torch.Tensor, torch.Tensor]:
    """Per slot, the first candidate fragment with enough ink that is clear of ``forbidden``
    (:func:`bench.data._scene.place_clear_chosen`, 1 px between fragments).

    u: ``[C, D, K, 8]`` (6 uniforms, px per source px, source index); n_used: ``[C]`` slots in
    use; forbidden: ``[C, H, W]`` (the target grown by the gap). Returns masks ``[C, D, H, W]``
    and the kept candidates' source indices ``[C, D]`` (-1: empty slot).
    """
    out, chosen = place_clear_chosen(
        u, n_used, forbidden, params.image_size,
        lambda v: fragment_masks(v[:, :7], images[v[:, 7].long()], params), gap=1)
    src = u[..., 7].gather(2, chosen.clamp(min=0)[..., None])[..., 0].long()
    return out, torch.where(chosen >= 0, src, torch.full_like(src, -1))
