"""Data-parallel training on N processes (``snnxai train MODEL --nproc N``).

:func:`fit_ddp` trains one model with :class:`~torch.nn.parallel.DistributedDataParallel` on
``nproc`` processes started with :func:`torch.multiprocessing.spawn` (gloo on CPU, one GPU per
process with NCCL on cuda), each reading its share of every epoch through a
:class:`~torch.utils.data.DistributedSampler`. The recipe is the card's, read as a *global* batch:
each process takes ``batch_size / nproc`` samples a step and DDP averages the gradients, so a
step is the same SGD step as one process on the whole batch. The sampler shuffles with the
generator ``seed + epoch`` and rank r takes positions r, r + N, ...; the union of the ranks'
b-th batches is the b-th contiguous block of that permutation, which is exactly what one
process with the same sampler reads. Hence the loss curve of N processes equals the curve of one
within float reduction order (``tests/test_distributed.py`` checks 2 gloo processes against 1),
as long as the model is deterministic in training mode. What cannot match by construction:
batch-norm statistics (computed per process, over ``batch_size / N`` samples, as DDP does without
SyncBatchNorm) and Poisson input spikes (drawn from each process's own seeded RNG).

The optimizer, learning-rate schedule and loss are :mod:`bench.models.training`'s own
(:func:`~bench.models.training._optimizer`, :func:`~bench.models.training.lr_factor`); the
final evaluation and the checkpoint go through the same functions as a one-process training,
and the sidecar records ``nproc``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler

from bench.errors import BenchError
from bench.models.build import dataset_for
from bench.models.card import ModelCard, TrainParams
from bench.models.training import CHECK_SAMPLES, Split, _optimizer, evaluate, load_split, lr_factor, spike_rates
from bench.seeding import seed_everything


@dataclasses.dataclass(frozen=True)
class DDPResult:
    """What rank 0 reports. state: the trained weights (CPU). step_losses: the global mean
    training loss of every step (averaged over the processes), in order. history: per epoch,
    ``{"epoch", "train_loss", "train_accuracy"}`` over all samples of all processes."""

    state: dict[str, torch.Tensor]
    step_losses: list[float]
    history: list[dict[str, float]]


def per_rank_batch(tp: TrainParams, nproc: int) -> int:
    """The card's batch size is the global batch; each of ``nproc`` processes takes an equal share."""
    if nproc < 1:
        raise BenchError(f"--nproc must be >= 1, got {nproc}")
    if tp.batch_size % nproc:
        raise BenchError(f"the recipe's batch size {tp.batch_size} does not split over {nproc} processes; "
                         f"choose --nproc dividing it (or --recipe-param batch_size=...)")
    return tp.batch_size // nproc


def _worker(rank: int, nproc: int, build: Callable[[], nn.Module], tp: TrainParams, train: Split, seed: int,
            device: str, threads: int, rendezvous: str, result_path: str) -> None:
    """One process: join the group, train its share, rank 0 saves a :class:`DDPResult`."""
    torch.set_num_threads(threads)
    cuda = device.startswith("cuda")
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{rendezvous}",
                            rank=rank, world_size=nproc)
    try:
        dev = torch.device(f"cuda:{rank}" if cuda else "cpu")
        seed_everything(seed)          # every rank builds the same weights (DDP also broadcasts rank 0's)
        model = build().to(dev)
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[rank] if cuda else None)
        seed_everything(seed + rank)   # rank 0 draws what one process would; the others differ
        result = _train_loop(ddp, tp, train, seed, rank, nproc, dev)
        if rank == 0:
            # plain containers only: the parent reads them back with weights_only=True (no pickle runs)
            torch.save({"state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                        "step_losses": [float(v) for v in result.step_losses],
                        "history": [dict(h) for h in result.history]}, result_path)
    finally:
        dist.destroy_process_group()


def _train_loop(ddp: nn.Module, tp: TrainParams, train: Split, seed: int, rank: int, nproc: int,
                dev: torch.device) -> DDPResult:
    """The epochs of one rank: ``x [N, C, H, W]`` normalized, ``y [N]``; every step's loss and
    each epoch's totals are summed over the ranks (all_reduce) so rank 0 reports global figures."""
    x, y, _ = train
    n, pb = len(y), per_rank_batch(tp, nproc)
    sampler = DistributedSampler(range(n), num_replicas=nproc, rank=rank, shuffle=True, seed=seed)
    steps_per_epoch = math.ceil(len(sampler) / pb)
    total, step = tp.epochs * steps_per_epoch, 0
    opt = _optimizer(ddp.module, tp)
    losses: list[float] = []
    history: list[dict[str, float]] = []
    for epoch in range(tp.epochs):
        ddp.train()
        sampler.set_epoch(epoch)
        mine = torch.tensor(list(sampler), dtype=torch.long)
        totals = torch.zeros(3, dtype=torch.float64, device=dev)   # loss sum, correct, samples
        for b in range(steps_per_epoch):
            idx = mine[b * pb:(b + 1) * pb]
            for g in opt.param_groups:
                g["lr"] = tp.lr * lr_factor(tp, step, total)
            xb, yb = x[idx].to(dev), y[idx].to(dev)
            logits = ddp(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=tp.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()            # DDP averages the gradients over the ranks here
            opt.step()
            step += 1
            # the ranks' batches are equal in size (the sampler pads), so the mean of their means
            # is the global batch's mean
            reduced = loss.detach().double().reshape(1)
            dist.all_reduce(reduced)
            losses.append(float(reduced) / nproc)
            totals += torch.tensor([float(loss.detach()) * len(idx), float((logits.argmax(1) == yb).sum()),
                                    len(idx)], dtype=torch.float64, device=dev)
        dist.all_reduce(totals)
        history.append({"epoch": epoch + 1, "train_loss": round(float(totals[0] / totals[2]), 4),
                        "train_accuracy": round(float(totals[1] / totals[2]), 4)})
    return DDPResult(state={}, step_losses=losses, history=history)


def fit_ddp(build: Callable[[], nn.Module], tp: TrainParams, train: Split, *, nproc: int, seed: int = 0,
            device: str = "cpu", threads: int | None = None) -> DDPResult:
    """Train ``build()`` (a picklable callable: it runs in each process) with recipe ``tp`` on
    ``train`` (``x [N, C, H, W]`` normalized, ``y [N]``, ids ``[N]``) on ``nproc`` processes.

    threads: torch CPU threads per process (default: this process's threads split evenly)."""
    per_rank_batch(tp, nproc)   # fails before any process starts
    if device.startswith("cuda") and torch.cuda.device_count() < nproc:
        raise BenchError(f"--nproc {nproc} on cuda needs {nproc} GPUs; torch sees {torch.cuda.device_count()}")
    threads = threads or max(1, torch.get_num_threads() // nproc)
    with tempfile.TemporaryDirectory(prefix="snnxai-ddp-") as tmp:
        result_path = os.path.join(tmp, "result.pt")
        torch.multiprocessing.spawn(_worker, nprocs=nproc, join=True,
                                    args=(nproc, build, tp, train, seed, device, threads,
                                          os.path.join(tmp, "rendezvous"), result_path))
        return DDPResult(**torch.load(result_path, weights_only=True))


# -- the command's entry point ------------------------------------------------------------------
def train_ddp(card: ModelCard, *, nproc: int, dataset: str | None = None, params: dict[str, Any] | None = None,
              seed: int = 0, device: str = "cpu",
              log: Callable[[str], None] = print) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`bench.models.training.train` with the fit on ``nproc`` processes: returns
    ``(model in eval mode, report)`` with the same report fields plus ``nproc``."""
    import functools

    from bench.models import build_model

    if card.source == "converted" or card.train.init == "twin":
        raise BenchError(f"{card.name} starts from its ANN twin; --nproc trains from scratch only "
                         "(train the twin with --nproc, then convert without it)")
    seed_everything(seed)
    test = load_split(dataset_for(card, dataset, params, "test"))
    train_data = load_split(dataset_for(card, dataset, params, "train"), card.train.n_train)
    start = time.perf_counter()
    result = fit_ddp(functools.partial(build_model, card), card.train, train_data, nproc=nproc, seed=seed,
                     device=device)
    elapsed = time.perf_counter() - start
    model = build_model(card)
    model.load_state_dict(result.state)
    model = model.to(device).eval()
    for row in result.history:
        log(f"{card.name} epoch {row['epoch']}/{card.train.epochs} ({nproc} processes): "
            f"loss {row['train_loss']:.4f} train acc {row['train_accuracy']:.4f}")
    first = tuple(t[:CHECK_SAMPLES] for t in test)
    report = {"test_accuracy": round(evaluate(model, test, seed), 4), "n_test": len(test[1]),
              f"test_accuracy_first_{CHECK_SAMPLES}": round(evaluate(model, first, seed), 4),
              "spike_rates": spike_rates(model, test, seed), "train_time_s": round(elapsed, 1),
              "n_train": len(train_data[1]), "nproc": nproc, "threads": torch.get_num_threads(),
              "history": result.history}
    return model, report


def ensure_trained_ddp(card: ModelCard, *, nproc: int, dataset: str | None = None,
                       params: dict[str, Any] | None = None, seed: int = 0, cache_dir: str | Path | None = None,
                       force: bool = False, command: str = "", device: str = "cpu",
                       log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any], bool]:
    """:func:`bench.models.load.ensure_trained` trained on ``nproc`` processes: the same cache
    entry (recipe, data and seed make the key, as for a GPU- or CPU-trained checkpoint; the
    sidecar's ``nproc`` says how it was trained)."""
    from bench.models.build import data_config
    from bench.models.cache import cache_path, read_meta, save_checkpoint, training_meta
    from bench.models.load import _key

    data = data_config(card, dataset, params)
    key = _key(card, data, seed)
    path = cache_path(card, key, cache_dir)
    if path.exists() and not force:
        return path, read_meta(path), False
    model, report = train_ddp(card, nproc=nproc, dataset=dataset, params=params, seed=seed, device=device, log=log)
    meta = training_meta(card, data, seed, command or f"snnxai train {card.name} --seed {seed} --nproc {nproc}",
                         report, key=key)
    return path, save_checkpoint(model.state_dict(), path, meta), True
