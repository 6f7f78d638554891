"""Accuracy under attack vs epsilon for zoo models: the orientation table of the robustness study.

    python -m bench.attacks.sweep --models vgg5_ann vgg5_snn_t8 vgg5_snn_t8_poisson \\
        --n 256 --eps 0.5 1 2 4 8 --eot 1 8

prints one row per (model, attack, eps): clean and attacked accuracy over the first ``n``
test samples, PGD (steps 10, step 0.25 eps, random start) white-box; ``eot`` is ignored for
models with a deterministic encoding. Sample ``i`` keeps its id, so results match the runner's.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from bench.attacks.core import AttackSpec, attack, predict
from bench.attacks.resolve import is_stochastic
from bench.data import get_dataset
from bench.data.base import load_batch


def accuracy_sweep(model_names: list[str], n: int, eps_255: list[float], eot: list[int],
                   steps: int = 10, batch_size: int = 64, seed: int = 0, split: str = "test",
                   device: str = "cpu", cache_dir: str | None = None) -> pd.DataFrame:
    """Rows ``model, attack, eot, eps_255, n, clean_acc, adv_acc, seconds``."""
    from bench.models import get_card, load_model

    recs = []
    for name in model_names:
        model = load_model(name, device=device, seed=seed, cache_dir=cache_dir, train_if_missing=False)
        card = get_card(name)
        ds = get_dataset(card.dataset, split)
        batches = [load_batch(ds, range(i, min(i + batch_size, n))).to(device) for i in range(0, n, batch_size)]
        stochastic = is_stochastic(model, batches[0].x, batches[0].sample_id, seed)
        clean = torch.cat([predict(model, b.x, b.sample_id, seed) == b.y for b in batches])
        for k in sorted(set(eot if stochastic else [1])):
            spec = AttackSpec(kind="pgd", steps=steps, eot=k)
            for e in eps_255:
                t0 = time.perf_counter()
                ok = torch.cat([predict(model, attack(model, b.x, b.y, b.sample_id, e / 255, spec, ds.mean, ds.std,
                                                      seed), b.sample_id, seed) == b.y for b in batches])
                recs.append({"model": name, "attack": f"pgd{steps}", "eot": k, "eps_255": e, "n": n,
                             "clean_acc": clean.float().mean().item(),
                             "adv_acc": (ok & clean).float().mean().item(),
                             "seconds": round(time.perf_counter() - t0, 1)})
                print(recs[-1], flush=True)
    return pd.DataFrame(recs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["vgg5_ann", "vgg5_snn_t8", "vgg5_snn_t8_poisson"])
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.5, 1, 2, 4, 8], help="budgets x 1/255")
    ap.add_argument("--eot", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cache-dir", default=None, help="checkpoint cache (default: $SNNXAI_CACHE or the user cache)")
    a = ap.parse_args(argv)
    print(accuracy_sweep(a.models, a.n, a.eps, a.eot, a.steps, device=a.device, cache_dir=a.cache_dir).to_string(index=False))


if __name__ == "__main__":
    main()
