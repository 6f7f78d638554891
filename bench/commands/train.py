"""``snnxai train MODEL [--data DATASET] [--epochs N] [--recipe-param K=V] [--seed S] [--cache-dir DIR] [--force]``
and ``snnxai train --zoo [MODEL ...]``: train models into the cache, or rewrite the shipped zoo."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING

from bench.config import parse_key_values
from bench.errors import BenchError

if TYPE_CHECKING:
    from bench.models.card import ModelCard

HELP = "train a model into the checkpoint cache (or retrain the shipped zoo with --zoo)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="*", metavar="MODEL", help="model name(s) (see `snnxai ls models`)")
    p.add_argument("--data", metavar="DATASET", help="dataset to train on (default: the card's)")
    p.add_argument("--data-param", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset parameter, e.g. --data-param root=/data/tiny-imagenet-200")
    p.add_argument("--epochs", type=int, help="override the card's epoch count (part of the cache key)")
    p.add_argument("--recipe-param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field of the card's training recipe (part of the cache key), e.g. "
                        "--recipe-param lr=2e-3 --recipe-param n_train=32000 (with --data-param n_train=32000)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--cache-dir", metavar="DIR", help="checkpoint cache (default $SNNXAI_CACHE or ~/.cache/snnxai)")
    p.add_argument("--force", action="store_true", help="retrain even if a cached checkpoint exists")
    p.add_argument("--zoo", action="store_true",
                   help="retrain the shipped zoo models (all, or those named) and rewrite bench/zoo/")
    p.add_argument("--device", default="cpu", help="torch device to train on: cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel training on N processes (DDP; gloo on cpu, one GPU each on cuda); "
                        "the recipe's batch size is the global batch (bench.models.distributed)")


def _keep_freed_memory() -> None:
    """Let glibc reuse freed blocks instead of mapping fresh pages for every large tensor.

    An SNN step allocates many [T*B, C, H, W] temporaries above glibc's mmap threshold; each
    one would otherwise be page-faulted in anew (about a fifth of a CPU training step here).
    Harmless elsewhere: a no-op without glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _check_train_size(card: ModelCard, dataset: str | None, params: dict[str, object] | None) -> None:
    """A recipe's ``n_train`` larger than the train split would silently train on fewer images."""
    from bench.models.build import dataset_for

    available = len(dataset_for(card, dataset, params))
    if card.train.n_train > available:
        raise BenchError(f"recipe n_train={card.train.n_train} but the train split has {available} images "
                         f"(add --data-param n_train={card.train.n_train} for the generated datasets)")


def main(args: argparse.Namespace) -> int:
    import torch

    from bench.commands.common import check_device, check_out_dir, check_positive
    from bench.models import ensure_trained, get_card
    from bench.models.load import train_zoo, with_epochs
    from bench.models.training import with_recipe
    from bench.models.zoo import zoo_names

    check_device(args.device)
    check_positive(args.threads, "--threads")
    if args.seed < 0:
        raise BenchError(f"--seed must be >= 0, got {args.seed}")
    if args.cache_dir is not None:
        check_out_dir(args.cache_dir, "--cache-dir")
    if args.threads:
        torch.set_num_threads(args.threads)
    _keep_freed_memory()
    command = shlex.join(["snnxai", "train", *sys.argv[2:]]) if sys.argv[1:2] == ["train"] else \
        shlex.join(["snnxai", "train", *args.models] + (["--zoo"] if args.zoo else []))
    if args.zoo:
        if args.data or args.data_param or args.epochs or args.recipe_param or args.seed or args.cache_dir \
                or args.force:
            raise BenchError("--zoo trains the shipped recipes as they are: it takes no --data, "
                             "--data-param, --epochs, --recipe-param, --seed, --cache-dir or --force")
        unknown = [m for m in args.models if m not in zoo_names()]
        if unknown:
            raise BenchError(f"not zoo models: {', '.join(unknown)} (zoo: {', '.join(zoo_names())})")
        train_zoo(args.models or None, command, progress=not args.no_progress)
        return 0
    if not args.models:
        raise BenchError("name a model to train (see `snnxai ls models`), or use --zoo")
    if args.nproc < 1:
        raise BenchError(f"--nproc must be >= 1, got {args.nproc}")
    params = parse_key_values(args.data_param) or None
    recipe = parse_key_values(args.recipe_param)
    for name in args.models:
        card = with_epochs(with_recipe(get_card(name), recipe), args.epochs)
        if "n_train" in recipe:
            _check_train_size(card, args.data, params)
        if args.nproc != 1:
            from bench.models.distributed import ensure_trained_ddp

            path, meta, trained = ensure_trained_ddp(
                card, nproc=args.nproc, dataset=args.data, params=params, seed=args.seed,
                cache_dir=args.cache_dir, force=args.force, command=command, device=args.device)
        else:
            path, meta, trained = ensure_trained(
                card, dataset=args.data, params=params, seed=args.seed,
                cache_dir=args.cache_dir, force=args.force, progress=not args.no_progress, command=command,
                device=args.device)
        state = "trained" if trained else "already cached, nothing trained"
        print(f"{name}: {state}: {path} (test accuracy {meta['test_accuracy']:.4f}, "
              f"train time {meta['train_time_s']:.0f} s)")
    return 0
