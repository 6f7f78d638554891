"""How much a `shapes` or `digits` split leaves to explain: ``python scripts/data_stats.py [--layout L ...]``.

For each layout (default: ``centred`` and ``headroom``) on the test split (1000 images) it prints
the target statistics that decide how informative localization scores are -- mask area fraction,
centroid spread, how many masks cover the 2x2 centre pixels, box width -- and the pointing game
of the two model-free baselines, computed with the suite's own code: the registered ``center``
and ``random`` methods (default params, run seed 0), the default post-processing and the
registered ``pointing_game`` metric (default tolerance: 2 px at 32, 3 at 48, 4 at 64). It also
prints the chance level of a uniformly random point (the share of pixels within the tolerance
of the mask), which ``random`` should match. Deterministic: the data and both baselines are
seeded. ``--dataset digits`` measures the ``digits`` family instead (one column; its clutter
is the digit fragments; ``--param`` takes any of its params).
"""

from __future__ import annotations

import argparse
import math

import torch

from bench.config import parse_key_values
from bench.data import get_dataset
from bench.data.base import load_batch
from bench.registry import METHODS, METRICS
from methods.base import ExplainInput
from methods.postprocess import postprocess
from metrics._localization import default_tolerance
from metrics.base import ScoreInput


def within(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """``[N, H, W]`` bool -> pixels within Euclidean ``radius`` of a mask pixel (the pointing
    game's hit region for a point), ``[N, H, W]`` bool."""
    k = torch.arange(-radius, radius + 1)
    disk = (k[:, None] ** 2 + k[None, :] ** 2 <= radius ** 2).float()[None, None]
    grown = torch.nn.functional.conv2d(masks.float()[:, None], disk, padding=radius)
    return grown[:, 0] > 0


def baseline_pointing(ds, method: str, seed: int = 0, batch: int = 250) -> float:
    """Mean pointing game of baseline ``method`` over the split (NaNs for empty masks excluded)."""
    entry, metric = METHODS.get(method), METRICS.get("pointing_game")
    scores = []
    for start in range(0, len(ds), batch):
        b = load_batch(ds, range(start, min(start + batch, len(ds))))
        # the baselines never touch the model: model, card and layer stay unset
        inp = ExplainInput(model=None, card=None, layer="", x=b.x, target=b.y,  # type: ignore[arg-type]
                           sample_id=b.sample_id, seed=seed)
        maps = postprocess(entry.obj(inp, entry.make_params()), ds.image_size)
        scores.append(metric.obj(ScoreInput(maps=maps, batch=b), metric.make_params()).values)
    s = torch.cat(scores)
    return float(s[~s.isnan()].mean())


def stats(layout: str, size: int, texture: str, n: int,
          extra: dict[str, object] | None = None) -> dict[str, float]:
    """The statistics of the first ``n`` test images of ``shapes`` with these params (``extra``:
    further dataset params, e.g. ``scale_min``; for a layout whose params do not take them, the
    caller leaves them out)."""
    ds = get_dataset("shapes", "test", {"layout": layout, "image_size": size, "texture": texture,
                                        "n_test": n, **(extra or {})})
    return measure(ds)


def measure(ds) -> dict[str, float]:
    """The statistics of every image of ``ds`` (a split with ``tensors()`` and ``clutter_masks()``)."""
    size = ds.image_size
    t = ds.tensors()
    masks = t.masks
    area = masks.flatten(1).float().mean(1)
    rows = torch.arange(size, dtype=torch.float32).view(1, size, 1) + 0.5
    cols = torch.arange(size, dtype=torch.float32).view(1, 1, size) + 0.5
    npx = masks.flatten(1).sum(1).float()
    cx = (masks * cols).flatten(1).sum(1) / npx
    cy = (masks * rows).flatten(1).sum(1) / npx
    dist = ((cx - size / 2) ** 2 + (cy - size / 2) ** 2).sqrt()
    c = size // 2
    centre = masks[:, c - 1:c + 1, c - 1:c + 1].flatten(1)
    tol = default_tolerance(size)
    clutter = ds.clutter_masks()
    return {
        "images": len(ds), "size": size, "tolerance_px": tol,
        "area_mean": float(area.mean()), "area_median": float(area.median()),
        "area_p10": float(area.quantile(0.1)), "area_p90": float(area.quantile(0.9)),
        "centroid_dist_mean_px": float(dist.mean()), "centroid_dist_p90_px": float(dist.quantile(0.9)),
        "centroid_std_x_px": float(cx.std()), "centroid_std_y_px": float(cy.std()),
        "uniform_std_px": size / math.sqrt(12),  # a centroid uniform over the whole canvas
        "centre_2x2_any": float(centre.any(1).float().mean()),
        "centre_2x2_all": float(centre.all(1).float().mean()),
        "box_width_mean_px": float((t.boxes[:, 2] - t.boxes[:, 0]).mean()),
        "clutter_share": float(clutter.flatten(1).any(1).float().mean()),
        "clutter_area_mean": float(clutter.flatten(1).float().mean(1).mean()),
        "chance_pointing": float(within(masks, tol).flatten(1).float().mean(1).mean()),
        "pointing_center": baseline_pointing(ds, "center"),
        "pointing_random": baseline_pointing(ds, "random"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["shapes", "digits"], default="shapes",
                   help="data family (default shapes; digits has no layouts)")
    p.add_argument("--layout", action="append", choices=["centred", "headroom"],
                   help="layout(s) to measure (default: both)")
    p.add_argument("--size", type=int, default=32, help="image size (default 32)")
    p.add_argument("--texture", default="default", help="texture level (default 'default')")
    p.add_argument("--n", type=int, default=1000, help="test images (default 1000, the whole split)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a further dataset param of the headroom layout, e.g. --param scale_min=0.17")
    a = p.parse_args()
    torch.set_num_threads(1)
    layouts = a.layout or ["centred", "headroom"]
    extra = parse_key_values(a.param)
    if a.dataset == "digits":
        layouts = ["digits"]
        table = {"digits": measure(get_dataset("digits", "test", {"image_size": a.size, "texture": a.texture,
                                                                  "n_test": a.n, **extra}))}
    else:
        table = {lay: stats(lay, a.size, a.texture, a.n, extra if lay == "headroom" else None) for lay in layouts}
    print(f"{'statistic':<24}" + "".join(f"{lay:>12}" for lay in layouts))
    for key in table[layouts[0]]:
        vals = [table[lay][key] for lay in layouts]
        print(f"{key:<24}" + "".join(f"{v:>12.0f}" if float(v).is_integer() and abs(v) >= 1 and
                                     key in ("images", "size", "tolerance_px") else f"{v:>12.3f}"
                                     for v in vals))


if __name__ == "__main__":
    main()
