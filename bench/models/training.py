"""Training: BPTT with surrogate gradients (SNNs), standard training (ANNs), conversion.

Everything here is a function of (card, data, seed): :func:`train` seeds all generators,
builds the model fresh, trains it on the first ``card.train.n_train`` samples of the train
split and measures it on the whole test split. An SNN's loss is the cross-entropy of its
time-averaged logits (the paper's readout). Poisson encodings draw from the seeded global RNG
while training and from per-sample generators (``sample_id``) when evaluating, so measured
accuracies are reproducible. Converted SNNs (``card.source == "converted"``) and SNNs that
start from their twin's weights (``card.train.init == "twin"``, :mod:`bench.models.twin_init`)
get their ANN twin from ``twin_loader`` (the zoo/cache/trainer of :func:`bench.models.load_model`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.data.base import load_batch, normalize
from bench.errors import BenchError
from bench.models.build import build_model, dataset_for, get_card
from bench.models.card import INIT_KINDS, ModelCard, TrainParams, init_source
from bench.models.record import record
from bench.seeding import seed_everything

Split = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # x [N, C, H, W] normalized, y [N], ids [N]

#: The accuracy on the first test samples is recorded too, so tests can re-check it quickly.
CHECK_SAMPLES = 500


#: Allowed values of the recipe's categorical fields (checked by :func:`with_recipe`).
_CHOICES = {"optimizer": ("sgd", "adam"), "schedule": ("cosine", "step"), "init": INIT_KINDS}
#: Recipe fields that change a converted SNN (its twin's recipe is the registered card's).
CONVERSION_FIELDS = frozenset({"n_train", "conversion_percentile"})


def with_recipe(card: ModelCard, overrides: dict[str, Any]) -> ModelCard:
    """``card`` with recipe fields replaced (``{"epochs": 24, "lr": 2e-3}``; part of the cache key).

    Unknown fields, wrong types and out-of-range values are a :class:`BenchError`. A converted
    card accepts only :data:`CONVERSION_FIELDS`: its ANN twin is loaded by name, with the
    registered twin card's recipe.
    """
    if not overrides:
        return card
    fields = {f.name: f for f in dataclasses.fields(TrainParams)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise BenchError(f"unknown recipe field(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    if card.source == "converted" and set(overrides) - CONVERSION_FIELDS:
        raise BenchError(f"{card.name} is converted from {card.twin}: only {', '.join(sorted(CONVERSION_FIELDS))} "
                         f"of its recipe can change (train the twin with its own recipe)")
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        default = getattr(TrainParams(), key)
        if key == "init" and value not in _CHOICES[key]:
            _check_init_source(card, value)
        elif isinstance(default, str):
            if value not in _CHOICES[key]:
                raise BenchError(f"recipe {key} must be one of {', '.join(_CHOICES[key])}, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BenchError(f"recipe {key} must be an integer >= 1, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                (key == "lr" and value == 0):
            raise BenchError(f"recipe {key} must be a number {'> 0' if key == 'lr' else '>= 0'}, got {value!r}")
        else:
            value = float(value)
        values[key] = value
    return dataclasses.replace(card, train=dataclasses.replace(card.train, **values))


def _check_init_source(card: ModelCard, name: object) -> None:
    """``name`` must be a registered model of ``card``'s architecture and kind (else BenchError)."""

    if not isinstance(name, str):
        raise BenchError(f"recipe init must be scratch, twin or a model name, got {name!r}")
    src = get_card(name)  # an unknown name: UnknownNameError with "did you mean"
    if src.name == card.name or (src.arch, src.kind) != (card.arch, card.kind):
        raise BenchError(f"{card.name} cannot start from {src.name}: init needs another model of the same "
                         f"architecture and kind ({card.arch} {card.kind}; {src.name} is {src.arch} {src.kind})")


@torch.no_grad()
def init_from_model(model: nn.Module, source: nn.Module, name: str, source_name: str) -> None:
    """Copy ``source``'s parameters and buffers into ``model`` (same keys and shapes, else BenchError)."""
    mine, theirs = model.state_dict(), source.state_dict()
    for key in sorted(set(mine) | set(theirs)):
        if key not in mine or key not in theirs or mine[key].shape != theirs[key].shape:
            have = tuple(mine[key].shape) if key in mine else "missing"
            got = tuple(theirs[key].shape) if key in theirs else "missing"
            raise BenchError(f"{name} cannot start from {source_name}: {key} is {have} here and {got} there")
    model.load_state_dict(theirs)


def load_split(ds, n: int | None = None) -> Split:
    """The first ``n`` samples of ``ds`` (all by default) as normalized tensors."""
    n = len(ds) if n is None else min(n, len(ds))
    if hasattr(ds, "tensors"):  # fast path of the synthetic datasets
        t = ds.tensors()
        return normalize(t.images[:n], ds.mean, ds.std), t.labels[:n], t.sample_ids[:n]
    b = load_batch(ds, range(n))
    return b.x, b.y, b.sample_id


@torch.no_grad()
def evaluate(model: nn.Module, data: Split, seed: int = 0, batch_size: int = 250) -> float:
    """Top-1 accuracy in eval mode (Poisson spikes keyed by sample id, hence reproducible)."""
    model.eval()
    x, y, ids = data
    dev = _device(model)
    correct = 0
    for i in range(0, len(y), batch_size):
        logits = model(x[i:i + batch_size].to(dev), sample_id=ids[i:i + batch_size], seed=seed)
        correct += int((logits.argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / max(len(y), 1)


@torch.no_grad()
def spike_rates(model: nn.Module, data: Split, seed: int = 0, n: int = 200) -> dict[str, float]:
    """Mean spikes per neuron per time step of every layer on the first ``n`` samples (SNN only)."""
    if model.T == 1 and not getattr(next(iter(model.acts.values())), "spiking", False):
        return {}
    model.eval()
    x, _, ids = data
    with record(model, model.layer_names()) as rec:
        model(x[:n].to(_device(model)), sample_id=ids[:n], seed=seed)
    return {k: round(float(v.mean()), 4) for k, v in rec.spikes.items()}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _optimizer(model: nn.Module, tp: TrainParams) -> torch.optim.Optimizer:
    # no weight decay on batch-norm scales/shifts (1-d parameters)
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": tp.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if tp.optimizer == "adam":
        return torch.optim.AdamW(groups, lr=tp.lr)
    return torch.optim.SGD(groups, lr=tp.lr, momentum=tp.momentum, nesterov=tp.momentum > 0)


def lr_factor(tp: TrainParams, step: int, total: int) -> float:
    """Cosine to zero, or the paper's step schedule (/10 at 50, 70 and 90% of training)."""
    frac = step / max(total, 1)
    if tp.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * frac))
    return 0.1 ** sum(frac >= m for m in (0.5, 0.7, 0.9))


def fit(model: nn.Module, card: ModelCard, train: Split, test: Split, *, seed: int = 0,
        progress: bool = True, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train ``model`` in place for ``card.train.epochs``; returns the per-epoch history."""
    from tqdm.auto import tqdm

    tp = card.train
    x, y, _ = train
    dev = _device(model)
    opt = _optimizer(model, tp)
    steps_per_epoch = math.ceil(len(y) / tp.batch_size)
    total, step, history = tp.epochs * steps_per_epoch, 0, []
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, tp.epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        loss_sum, correct = 0.0, 0
        bar = tqdm(range(steps_per_epoch), desc=f"{card.name} epoch {epoch}/{tp.epochs}",
                   disable=not progress, leave=False, unit="batch")
        for b in bar:
            idx = order[b * tp.batch_size:(b + 1) * tp.batch_size]
            for g in opt.param_groups:
                g["lr"] = tp.lr * lr_factor(tp, step, total)
            xb, yb = x[idx].to(dev, non_blocking=True), y[idx].to(dev, non_blocking=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=tp.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        row = {"epoch": epoch, "train_loss": round(loss_sum / len(y), 4),
               "train_accuracy": round(correct / len(y), 4),
               "test_accuracy": round(evaluate(model, test, seed), 4),
               "spike_rates": spike_rates(model, test, seed)}
        history.append(row)
        rates = " ".join(f"{k}={v:.3f}" for k, v in row["spike_rates"].items())
        log(f"{card.name} epoch {epoch}/{tp.epochs}: loss {row['train_loss']:.4f} "
            f"train acc {row['train_accuracy']:.4f} test acc {row['test_accuracy']:.4f}"
            + (f" spike rates {rates}" if rates else ""))
    return history


def train(card: ModelCard, *, dataset: str | None = None, params: dict[str, Any] | None = None,
          seed: int = 0, progress: bool = True, log: Callable[[str], None] = print,
          twin_loader: Callable[[str], nn.Module] | None = None,
          init_loader: Callable[[str], nn.Module] | None = None,
          device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Train (or convert) ``card`` on ``device``, from scratch, its ANN twin (``twin_loader``) or
    another trained model (``init_loader``, for ``card.train.init`` naming a model; it loads that
    model trained on its own data). Returns ``(model in eval mode, report)``."""
    from bench.models.convert import convert

    seed_everything(seed)
    ds_train = dataset_for(card, dataset, params, "train")
    test = load_split(dataset_for(card, dataset, params, "test"))
    train_data = load_split(ds_train, card.train.n_train)
    start, cpu_start = time.perf_counter(), time.process_time()
    if card.source == "converted":
        if twin_loader is None or card.twin is None:
            raise BenchError(f"{card.name} is converted from its ANN twin, which is not available")
        ann = twin_loader(card.twin)
        model = convert(ann, card, train_data[0].to(_device(ann)))
        history: list[dict[str, Any]] = []
    else:
        model = build_model(card).to(device)
        if card.train.init == "twin":
            if twin_loader is None or card.twin is None:
                raise BenchError(f"{card.name} starts from its ANN twin's weights, which are not available")
            from bench.models.twin_init import init_from_twin

            ann = twin_loader(card.twin).to(device)
            init_from_twin(model, ann, train_data[0].to(device), card.train.conversion_percentile)
            log(f"{card.name}: initialised from {card.twin} (test acc at start "
                f"{evaluate(model, tuple(t[:CHECK_SAMPLES] for t in test), seed):.4f} on {CHECK_SAMPLES})")
        elif (source := init_source(card)) is not None:
            if init_loader is None:
                raise BenchError(f"{card.name} starts from {source}'s weights, which are not available")
            init_from_model(model, init_loader(source).to(device), card.name, source)
            log(f"{card.name}: initialised from {source} (test acc at start "
                f"{evaluate(model, tuple(t[:CHECK_SAMPLES] for t in test), seed):.4f} on {CHECK_SAMPLES})")
        history = fit(model, card, train_data, test, seed=seed, progress=progress, log=log)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    model.eval()
    first = tuple(t[:CHECK_SAMPLES] for t in test)
    report = {"test_accuracy": round(evaluate(model, test, seed), 4), "n_test": len(test[1]),
              f"test_accuracy_first_{CHECK_SAMPLES}": round(evaluate(model, first, seed), 4),
              "spike_rates": spike_rates(model, test, seed), "train_time_s": round(elapsed, 1),
              "train_cpu_s": round(cpu, 1),
              "n_train": len(train_data[1]), "threads": torch.get_num_threads(), "history": history}
    if card.source == "converted":
        log(f"{card.name}: converted from {card.twin}, test acc {report['test_accuracy']:.4f}")
    return model, report
