"""The perf harness (``snnxai perf``): performance targets as measured ratios, never asserts.

Each check times the suite's implementation against a baseline doing the same work on the same
machine and reports the ratio, so the numbers transfer across machines:

- ``sam_vs_reference``: the O(T) SAM recursion against the reference code's O(T^2) re-summation
  of all earlier spikes at every step (same outputs, checked), on a paper-sized layer.
- ``deletion_vs_forward``: a deletion curve (stacked batches) against the bare forward passes of
  the same number of rows: the ideal overhead is 1.0 (the curve *is* its forward passes).
- ``insertion_vs_forward``: the same for insertion.
- ``--paper`` (:func:`run_paper`): the paper's setting (``vgg11_snn_t30``: VGG11, 64x64, T=30,
  signed Poisson input; untrained weights, cost only) on a device: SAM, SNN Grad-CAM, a PGD-10
  attack and a PGD-10 attack with EOT-8 against the model's own forward pass (the ideal for SAM is
  about 1: it reads the spikes of one recorded forward), with the absolute times and the peak
  device memory in the name.
Timings are the best of ``repeats`` runs (the least disturbed by other load).

The performance report (``snnxai perf --out reports/perf``, :func:`perf_report`) puts each figure
next to its peer, the way a user would otherwise do the same work: SAM against the reference
code's per-image O(T^2) loop and against its recorded forward; deletion + insertion against a
per-image, per-step loop and against bare forwards; an SNN training step against the same layers
written with snnTorch ``Leaky``; PGD against torchattacks' PGD and PGD with EOT against PGD; the
harness's peak RSS; with ``--suite``, a suite run's wall time, peak RSS and cost per (model,
method, metric) cell, from which ``snnxai run --dry-run`` predicts a suite's cost
(:func:`print_dry_run`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from bench.rss import peak_rss_gib
from methods.sam import spike_activation_map

if TYPE_CHECKING:
    from bench.pipeline.plan import CellFilter
    from bench.suite import Suite


@dataclasses.dataclass(frozen=True)
class PerfResult:
    name: str
    ours_s: float
    baseline_s: float
    target: str

    @property
    def ratio(self) -> float:
        """baseline / ours for speed-ups, ours / baseline for overheads (see ``target``)."""
        return self.baseline_s / self.ours_s if self.target.startswith("speed-up") else self.ours_s / self.baseline_s


def best_time(fn: Callable[[], object], repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def sam_reference_quadratic(spikes: torch.Tensor, gamma: float = 0.5) -> torch.Tensor:
    """The reference code's arithmetic for the inclusive score, O(T^2): at every step t, re-sum
    ``exp(-gamma (t - t'))`` over all earlier spikes t' <= t. ``[T, B, C, H, W] -> [T, B, H, W]``."""
    T = spikes.shape[0]
    out = []
    for t in range(T):
        ncs = torch.zeros_like(spikes[0])
        for tp in range(t + 1):
            ncs = ncs + spikes[tp] * math.exp(-gamma * (t - tp))
        out.append((ncs * spikes[t]).sum(dim=1))
    return torch.stack(out)


def check_sam(T: int = 30, batch: int = 4, channels: int = 256, size: int = 16, repeats: int = 3) -> PerfResult:
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand((T, batch, channels, size, size), generator=g) < 0.2).float()
    ours = spike_activation_map(spikes, 0.5, "inclusive")
    ref = sam_reference_quadratic(spikes, 0.5)
    if not torch.allclose(ours, ref, rtol=1e-4, atol=1e-4):
        raise AssertionError("SAM recursion and quadratic reference disagree")
    return PerfResult(f"sam_vs_reference (T={T}, [{batch},{channels},{size},{size}])",
                      best_time(lambda: spike_activation_map(spikes, 0.5, "inclusive"), repeats),
                      best_time(lambda: sam_reference_quadratic(spikes, 0.5), repeats),
                      "speed-up (higher is better)")


def check_curve(kind: str, model_name: str = "vgg5_snn_t8", n_images: int = 16, n_steps: int = 16,
                max_batch: int = 256, repeats: int = 2) -> PerfResult:
    """Curve time vs the bare forward passes of the same rows (an untrained model: cost only)."""
    from bench.models import build_model
    from metrics._faithfulness import deletion_curve, insertion_curve

    model = build_model(model_name).eval()
    card = model.card
    g = torch.Generator().manual_seed(0)
    x = torch.randn((n_images, card.in_channels, card.input_size, card.input_size), generator=g)
    maps = torch.rand((n_images, card.input_size, card.input_size), generator=g)
    ids = torch.arange(n_images)
    rows = n_images * (n_steps + 1)
    stacked = x.repeat_interleave(n_steps + 1, dim=0)
    stacked_ids = ids.repeat_interleave(n_steps + 1)

    def model_fn(xx: torch.Tensor, sid: torch.Tensor) -> torch.Tensor:
        return model(xx, sample_id=sid)

    def forwards() -> None:
        with torch.no_grad():
            for s in range(0, rows, max_batch):
                model_fn(stacked[s:s + max_batch], stacked_ids[s:s + max_batch])

    curve = deletion_curve if kind == "deletion" else insertion_curve

    def run_curve() -> None:
        with torch.no_grad():
            curve(model_fn, x, maps, sample_id=ids, n_steps=n_steps, max_batch=max_batch)

    return PerfResult(f"{kind}_vs_forward ({model_name}, {n_images} images x {n_steps + 1} points)",
                      best_time(run_curve, repeats), best_time(forwards, repeats),
                      "overhead (ideal 1.0, lower is better)")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_paper(model_name: str = "vgg11_snn_t30", batch: int = 32, device: str = "cpu",
                pgd_steps: int = 10, eot: int = 8, repeats: int = 2) -> list[PerfResult]:
    """Explanation and attack cost at the paper's scale, as ratios to one forward pass of the
    same batch. Untrained weights (``build_model``): cost does not depend on training."""
    from bench.attacks.core import AttackSpec, attack
    from bench.data.base import Batch
    from bench.explain import explain_batch
    from bench.models import build_model

    dev = torch.device(device)
    model = build_model(model_name).to(dev).eval()
    card = model.card
    g = torch.Generator().manual_seed(0)
    size = card.input_size
    x = torch.randn((batch, card.in_channels, size, size), generator=g).to(dev)
    y = torch.randint(0, card.num_classes, (batch,), generator=g).to(dev)
    ids = torch.arange(batch, device=dev)
    b = Batch(x=x, y=y, sample_id=ids)
    mean, std = (0.5,) * card.in_channels, (0.25,) * card.in_channels

    def timed(fn: Callable[[], object]) -> float:
        def run() -> None:
            fn()
            _sync(dev)
        run()  # warm-up (cuDNN autotuning, allocator)
        return best_time(run, repeats)

    def forward() -> None:
        with torch.no_grad():
            model(x, sample_id=ids)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t_fwd = timed(forward)
    tag = f"{model_name}, {size}x{size}, T={card.T}, batch {batch}, {dev.type}"
    jobs = {"sam": lambda: explain_batch("sam", None, model, card, b, target=y),
            "snn_gradcam": lambda: explain_batch("snn_gradcam", None, model, card, b, target=y),
            f"pgd{pgd_steps}": lambda: attack(model, x, y, ids, 4 / 255, AttackSpec(steps=pgd_steps), mean, std),
            f"pgd{pgd_steps}_eot{eot}": lambda: attack(model, x, y, ids, 4 / 255,
                                                      AttackSpec(steps=pgd_steps, eot=eot), mean, std)}
    out = []
    for name, fn in jobs.items():
        t = timed(fn)
        out.append(PerfResult(f"{name}_vs_forward ({tag}; {t / batch * 1e3:.1f} ms/image)", t, t_fwd,
                              "overhead vs one forward pass (cost, lower is better)"))
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
    out.append(PerfResult(f"forward ({tag}; {t_fwd / batch * 1e3:.1f} ms/image, peak {peak:.1f} GiB)",
                          t_fwd, t_fwd, "reference (ratio 1)"))
    return out


def run_all(quick: bool = False) -> list[PerfResult]:
    reps = 1 if quick else 3
    n = 8 if quick else 16
    return [check_sam(repeats=reps), check_curve("deletion", n_images=n, repeats=reps),
            check_curve("insertion", n_images=n, repeats=reps)]


def format_results(results: list[PerfResult]) -> str:
    head = f"{'check':<62} {'ours (s)':>9} {'baseline (s)':>12} {'ratio':>7}  target"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(f"{r.name:<62} {r.ours_s:>9.3f} {r.baseline_s:>12.3f} {r.ratio:>7.2f}  {r.target}")
    return "\n".join(lines)


# -- the performance report (``snnxai perf --out reports/perf``) --------------------------------
# Every figure is a ratio of two timings taken in this process, one after the other, on the same
# inputs: ours and its peer (what a user would otherwise run). Peers that are not installed are
# skipped with a note. ``Sizes`` fixes the problem sizes: ``FULL`` is the committed report,
# ``SMALL`` checks that the harness works in seconds.


@dataclasses.dataclass(frozen=True)
class Sizes:
    """sam_model / sam_batch: the model whose recorded layer SAM reads, and its batch;
    sam_spike_batch: the batch of the spikes SAM and its per-image reference are timed on.
    curve_model / curve_images / curve_steps: deletion + insertion. train_model / train_batch:
    the training step. attack_model / attack_batch / attack_steps / eot: PGD. repeats: best of.
    sam_repeats: best of, for SAM and its reference (milliseconds each: a single scheduler
    hiccup on a 2-core machine moved the best of 3 between 14x and 22x)."""

    sam_model: str = "vgg11_snn_t30"
    sam_batch: int = 8
    sam_spike_batch: int = 50   # SAM vs its reference: the leaderboard's batch size
    curve_model: str = "vgg5_snn_t8"
    curve_images: int = 16
    curve_steps: int = 16
    train_model: str = "vgg5_snn_t8"
    train_batch: int = 32
    attack_model: str = "vgg5_ann"
    attack_batch: int = 32
    attack_steps: int = 10
    eot: int = 4
    eot_model: str = "vgg5_snn_t8_poisson"   # EOT runs only where the encoding draws (Poisson)
    repeats: int = 5
    sam_repeats: int = 15


FULL = Sizes()
SMALL = Sizes(sam_model="vgg5_snn_t8", sam_batch=2, curve_images=2, curve_steps=4, train_batch=4,
              attack_batch=4, attack_steps=2, eot=2, repeats=1, sam_repeats=1, sam_spike_batch=2)


@dataclasses.dataclass(frozen=True)
class Figure:
    """One line of the report: ``ratio`` = peer_s / ours_s (``kind`` "speed-up": higher is
    better) or ours_s / peer_s ("overhead": lower is better); ``target`` the bound it should meet
    (``>= 20`` or ``<= 1.1``); ``note`` why it was skipped (then the times are None)."""

    name: str
    ours: str
    peer: str
    kind: str
    target: str
    ours_s: float | None = None
    peer_s: float | None = None
    extra: dict[str, float | str] = dataclasses.field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours_s is None or self.peer_s is None:
            return None
        return self.peer_s / self.ours_s if self.kind == "speed-up" else self.ours_s / self.peer_s

    @property
    def met(self) -> bool | None:
        r = self.ratio
        if r is None:
            return None
        op, bound = self.target.split()
        return r >= float(bound) if op == ">=" else r <= float(bound)

    def record(self) -> dict[str, object]:
        ratio = self.ratio
        return {**dataclasses.asdict(self), "ratio": None if ratio is None else round(ratio, 3), "met": self.met}


def warm_time(fn: Callable[[], object], repeats: int) -> float:
    """:func:`best_time` after one untimed call (first-call allocations, lazy initialisation)."""
    fn()
    return best_time(fn, repeats)


def sam_reference_per_image(spikes: torch.Tensor, gamma: float = 0.5) -> torch.Tensor:
    """The reference code's way: one image at a time (batch size 1), O(T^2) re-summation each
    (:func:`sam_reference_quadratic`). ``[T, B, C, H, W] -> [T, B, H, W]``."""
    return torch.cat([sam_reference_quadratic(spikes[:, i:i + 1], gamma) for i in range(spikes.shape[1])], dim=1)


def _inputs(card, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random normalized images ``[B, C, H, W]``, labels ``[B]``, ids ``[B]`` for ``card``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, card.in_channels, card.input_size, card.input_size), generator=g)
    return x, torch.randint(0, card.num_classes, (batch,), generator=g), torch.arange(batch)


def figures_sam(s: Sizes) -> list[Figure]:
    """SAM on a recorded layer of ``s.sam_model`` (untrained: cost only): vs the per-image O(T^2)
    reference on the same spikes (outputs checked equal), and vs the forward pass it records."""
    from bench.data.base import Batch
    from bench.explain import explain_batch
    from bench.models import build_model
    from bench.models.record import record

    model = build_model(s.sam_model).eval()
    card = model.card
    x, y, ids = _inputs(card, s.sam_batch)
    layer = card.default_layer
    with torch.no_grad(), record(model, [layer]) as rec:
        model(x, sample_id=ids)
    # the recursion and the reference are dense: their cost does not depend on the spikes, but
    # the equality check does, and an untrained layer may be silent: Bernoulli(0.2) spikes of its
    # shape, at the runner's batch size (both sides scale with it; the recursion's cache blocking,
    # methods/sam.py, is what a batch larger than a block gains)
    recorded = rec.spikes[layer].shape
    spikes = (torch.rand((recorded[0], s.sam_spike_batch, *recorded[2:]),
                         generator=torch.Generator().manual_seed(2)) < 0.2).float()
    if not torch.allclose(spike_activation_map(spikes), sam_reference_per_image(spikes), rtol=1e-4, atol=1e-4):
        raise AssertionError("SAM recursion and the per-image quadratic reference disagree")
    shape = "x".join(str(d) for d in spikes.shape)
    ours = warm_time(lambda: spike_activation_map(spikes), s.sam_repeats)
    ref = warm_time(lambda: sam_reference_per_image(spikes), s.sam_repeats)

    def forward() -> None:
        with torch.no_grad():
            model(x, sample_id=ids)

    b = Batch(x=x, y=y, sample_id=ids)
    t_sam = warm_time(lambda: explain_batch("sam", None, model, card, b, target=y), s.repeats)
    t_fwd = warm_time(forward, s.repeats)
    return [Figure(f"SAM vs reference loop ({s.sam_model} {layer}, spikes {shape}, T={card.T})",
                   "spike_activation_map (O(T) recursion, batched)", "per-image O(T^2) loop (reference arithmetic)",
                   "speed-up", ">= 20", ours, ref),
            Figure(f"SAM vs its recorded forward ({s.sam_model}, batch {s.sam_batch})",
                   "snnxai explain sam (forward + record + SAM + post-processing)", "bare forward pass",
                   "overhead", "<= 1.1", t_sam, t_fwd)]


def figures_curves(s: Sizes) -> list[Figure]:
    """Deletion + insertion (stacked batches) vs a per-image, per-step loop giving the same curves
    (``max_batch=1`` per image: one forward per point, RISE's and Quantus's way; checked equal),
    and vs the bare forward passes of the same rows (the work no implementation can avoid)."""
    from bench.models import build_model
    from metrics._faithfulness import deletion_curve, insertion_curve

    model = build_model(s.curve_model).eval()
    x, _, ids = _inputs(model.card, s.curve_images)
    maps = torch.rand((s.curve_images, *x.shape[2:]), generator=torch.Generator().manual_seed(1))
    n, k = s.curve_images, s.curve_steps

    def fn(xx: torch.Tensor, sid: torch.Tensor) -> torch.Tensor:
        return model(xx, sample_id=sid)

    def ours() -> list[torch.Tensor]:
        with torch.no_grad():
            return [c(fn, x, maps, sample_id=ids, n_steps=k) for c in (deletion_curve, insertion_curve)]

    def loop() -> list[torch.Tensor]:
        with torch.no_grad():
            return [torch.cat([c(fn, x[i:i + 1], maps[i:i + 1], sample_id=ids[i:i + 1], n_steps=k, max_batch=1)
                               for i in range(n)]) for c in (deletion_curve, insertion_curve)]

    if not all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ours(), loop())):
        raise AssertionError("stacked curves and the per-image loop disagree")
    stacked = x.repeat_interleave(k + 1, 0)
    sids = ids.repeat_interleave(k + 1)

    def forwards() -> None:
        with torch.no_grad():
            for _ in range(2):   # deletion and insertion
                for j in range(0, len(sids), 256):
                    fn(stacked[j:j + 256], sids[j:j + 256])

    t_ours, t_loop, t_fwd = (warm_time(f, s.repeats) for f in (ours, loop, forwards))
    tag = f"{s.curve_model}, {n} images x {k + 1} points"
    # The loop's time over the bare forwards' (chunks of 256) says how much batching alone can gain
    # on this machine: on a 2-core CPU a batch-1 forward costs about what a batched one does per
    # image (1.1-1.2x), so the >= 5x target is out of reach here by batching; it is not a strict
    # bound (the curves' own chunking can run faster than the 256-chunks).
    return [Figure(f"deletion + insertion vs per-image loop ({tag})", "stacked curves (bench)",
                   "per-image, per-step loop", "speed-up", ">= 5", t_ours, t_loop,
                   extra={"loop_over_forwards": round(t_loop / t_fwd, 2)}),
            Figure(f"deletion + insertion vs bare forwards ({tag})", "stacked curves (bench)",
                   "the same rows' forward passes", "overhead", "<= 1.2", t_ours, t_fwd)]


class SnnTorchPeer(nn.Module):
    """The same network as a bench VGG SNN (its convolutions, linears and head, shared), written
    the snnTorch way: a Python loop over T steps, ``snntorch.Leaky`` neurons (same leak,
    threshold, subtract reset), one ``BatchNorm`` per layer. ``x [B, C, H, W] -> [B, K]``."""

    def __init__(self, model: nn.Module) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        card, n = model.card, model.card.neuron
        self.T, self.convs, self.fcs, self.head = card.T, model.convs, model.fcs, model.head
        self.pool_after = model.pool_after
        self.bns = nn.ModuleList(nn.BatchNorm2d(c.out_channels) for c in model.convs)
        self.fc_bns = nn.ModuleList(nn.BatchNorm1d(f.out_features) for f in model.fcs)
        self.lifs = nn.ModuleList(snn.Leaky(beta=n.leak, threshold=n.threshold, reset_mechanism="subtract",
                                            spike_grad=surrogate.fast_sigmoid())
                                  for _ in range(len(model.convs) + len(model.fcs)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mems = [lif.init_leaky() for lif in self.lifs]
        out = 0
        for _ in range(self.T):
            h = x
            for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
                h, mems[i] = self.lifs[i](bn(conv(h)), mems[i])
                if i + 1 in self.pool_after:
                    h = nn.functional.avg_pool2d(h, 2)
            h = h.mean(dim=(2, 3))
            for j, (fc, bn) in enumerate(zip(self.fcs, self.fc_bns)):
                k = len(self.convs) + j
                h, mems[k] = self.lifs[k](bn(fc(h)), mems[k])
            out = out + self.head(h)
        return out / self.T


def figures_training(s: Sizes) -> list[Figure]:
    """One SGD step (forward + backward) of ``s.train_model`` (direct input, so both read the same
    analog image each step) vs the snnTorch-written network of the same layers and T."""
    try:
        import snntorch  # noqa: F401
    except ImportError:
        return [Figure("SNN training step vs snnTorch", "bench VGG SNN", "snnTorch Leaky network", "speed-up",
                       ">= 1.3", note="snntorch not installed (pip install 'snn-xai-bench[test]')")]
    import torch.nn.functional as F

    from bench.models import build_model, get_card

    card = dataclasses.replace(get_card(s.train_model), encoding="direct")
    ours = build_model(card).train()
    peer = SnnTorchPeer(build_model(card)).train()
    x, y, _ = _inputs(card, s.train_batch)

    def step(m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            m.zero_grad(set_to_none=True)
            F.cross_entropy(m(x), y).backward()
        return run

    t_ours, t_peer = warm_time(step(ours), s.repeats), warm_time(step(peer), s.repeats)
    return [Figure(f"SNN training step vs snnTorch ({s.train_model}, T={card.T}, batch {s.train_batch})",
                   "bench VGG SNN (time-folded layers, fused LIF)", "snnTorch Leaky layers, loop over T",
                   "speed-up", ">= 1.3", t_ours, t_peer)]


def figures_attack(s: Sizes) -> list[Figure]:
    """PGD (``s.attack_steps`` steps; EOT averaging on an SNN, here 1 draw on the ANN) vs
    torchattacks' PGD with the same eps, step and steps on the same model (untrained: the
    accuracies under attack are recorded side by side, not judged), and PGD with EOT vs plain PGD."""
    from bench.attacks.core import AttackSpec, attack
    from bench.models import build_model

    model = build_model(s.attack_model).eval()
    card = model.card
    x, y, ids = _inputs(card, s.attack_batch)
    mean, std = (0.5,) * card.in_channels, (0.25,) * card.in_channels
    eps = 4 / 255
    spec = AttackSpec(steps=s.attack_steps)
    out: list[Figure] = []

    def acc(adv: torch.Tensor) -> float:
        with torch.no_grad():
            return float((model(adv, sample_id=ids).argmax(1) == y).float().mean())

    t_ours = warm_time(lambda: attack(model, x, y, ids, eps, spec, mean, std), s.repeats)
    acc_ours = acc(attack(model, x, y, ids, eps, spec, mean, std))
    try:
        import torchattacks
    except ImportError:
        out.append(Figure("PGD vs torchattacks", "bench PGD", "torchattacks.PGD", "speed-up", ">= 1.0",
                          note="torchattacks not installed"))
    else:
        from bench.data.base import denormalize, normalize

        class Pixels(nn.Module):   # torchattacks attacks images in [0, 1]
            def forward(self, p: torch.Tensor) -> torch.Tensor:
                return model(normalize(p, mean, std), sample_id=ids)

        ta = torchattacks.PGD(Pixels(), eps=eps, alpha=eps * spec.step_frac, steps=spec.steps, random_start=True)
        clean = denormalize(x, mean, std).clamp(0, 1)
        t_ta = warm_time(lambda: ta(clean, y), s.repeats)
        acc_ta = acc(normalize(ta(clean, y), mean, std))
        out.append(Figure(f"PGD-{spec.steps} vs torchattacks ({s.attack_model}, eps 4/255, batch {s.attack_batch})",
                          "bench PGD", "torchattacks.PGD", "speed-up", ">= 1.0", t_ours, t_ta,
                          extra={"accuracy_ours": round(acc_ours, 4), "accuracy_peer": round(acc_ta, 4)}))
    snn = build_model(s.eot_model).eval()
    xs, ys, ids_s = _inputs(snn.card, s.attack_batch)
    eot = AttackSpec(steps=s.attack_steps, eot=s.eot)
    t_eot = warm_time(lambda: attack(snn, xs, ys, ids_s, eps, eot, mean, std), s.repeats)
    t_plain = warm_time(lambda: attack(snn, xs, ys, ids_s, eps, spec, mean, std), s.repeats)
    out.append(Figure(f"PGD-{spec.steps} with EOT-{s.eot} vs without ({s.eot_model}, batch {s.attack_batch})",
                      f"PGD + EOT-{s.eot}", "PGD (1 draw)", "overhead", f"<= {float(s.eot):g}", t_eot, t_plain))
    return out


def run_cost(run_dir: str) -> dict[str, object]:
    """Cost per (model, method, metric) cell of a finished run (``run.json``'s cost records):
    wall seconds per sample, summed over stages; the wall time and peak RSS if recorded."""
    import json
    from pathlib import Path

    run = json.loads((Path(run_dir) / "run.json").read_text())
    cells: dict[str, float] = {}
    for c in run.get("cost", []):
        n = max(int(c.get("n_samples") or 1), 1)
        key = f"{c['model']}|{c['method']}|{c['metric'] or '(explain)'}"
        cells[key] = cells.get(key, 0.0) + float(c["wall_s"]) / n
    return {"run": str(run_dir), "wall_s": run.get("timing", {}).get("wall_s"),
            "per_sample_s": {k: round(v, 5) for k, v in sorted(cells.items())}}


def measure_suite_run(suite: str, out: str, limit: int | None = None) -> dict[str, object]:
    """``snnxai run SUITE`` in a child process: its wall time, peak RSS (GiB) and cost per cell."""
    import resource
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "bench", "run", suite, "--out", out, "--quiet", "--no-report", "--force"]
    if limit:
        cmd += ["--limit", str(limit)]
    t0 = time.perf_counter()
    if subprocess.run(cmd).returncode != 0:   # its own error line is already on stderr
        from bench.errors import BenchError

        raise BenchError(f"the measured run failed: snnxai {' '.join(cmd[3:])}")
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 2**30
    shown = f"run {suite} --no-report" + (f" --limit {limit}" if limit else "")   # without the temporary --out
    return {"suite": suite, "command": shown, "wall_s": round(wall, 2), "peak_rss_gib": round(rss, 3),
            **run_cost(out)}


def perf_report(s: Sizes, suite_run: dict[str, object] | None = None) -> dict[str, object]:
    """Every figure of the report (one process, one after the other) and the machine it ran on."""
    import platform

    figures = figures_sam(s) + figures_curves(s) + figures_training(s) + figures_attack(s)
    return {"sizes": dataclasses.asdict(s), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "figures": [f.record() for f in figures], "peak_rss_gib_harness": round(peak_rss_gib(), 3),
            "suite_run": suite_run}


def report_markdown(report: dict[str, object]) -> str:
    """reports/perf/README.md: the figures as a table (ratio, target, met), then the run's costs."""
    lines = ["# Performance report", "",
             "Written by `snnxai perf --out reports/perf`; every ratio is two timings taken in the same "
             "process on the same inputs (best of "
             f"{report['sizes']['repeats']}), torch {report['torch']}, {report['threads']} threads.", "",
             "| figure | ours | peer | ours (s) | peer (s) | ratio | target | met |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for f in report["figures"]:
        if f["ratio"] is None:
            lines.append(f"| {f['name']} | {f['ours']} | {f['peer']} | | | skipped | {f['target']} | {f['note']} |")
            continue
        kind = "x faster" if f["kind"] == "speed-up" else "x the peer's time"
        extra = "".join(f"; {k} {v}" for k, v in f["extra"].items())
        lines.append(f"| {f['name']} | {f['ours']} | {f['peer']} | {f['ours_s']:.4f} | {f['peer_s']:.4f} | "
                     f"{f['ratio']:.2f} {kind} | {f['target']} | {'yes' if f['met'] else 'no'}{extra} |")
    lines += ["", f"Peak memory (max RSS) of this harness: {report['peak_rss_gib_harness']} GiB."]
    run = report.get("suite_run")
    if run:
        lines += ["", f"`snnxai {run['command']}`: wall {run['wall_s']} s, peak RSS {run['peak_rss_gib']} GiB.",
                  "", "| model | method | metric | s per sample |", "|---|---|---|---:|"]
        for key, v in run["per_sample_s"].items():
            model, method, metric = key.split("|")
            lines.append(f"| {model} | {method or '(model scope)'} | {metric} | {v:.4f} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, object], out: str) -> None:
    """``out/perf.json`` and ``out/README.md``."""
    from pathlib import Path

    from bench.store import write_atomic
    from bench.store.rundir import dump_json

    write_atomic(Path(out) / "perf.json", dump_json(report))
    write_atomic(Path(out) / "README.md", report_markdown(report))


# -- predicted cost of a suite (``snnxai run SUITE --dry-run``) ----------------------------------
def predict_cost(cells: list[tuple[str, str]], metrics: dict[str, list[str]], n_samples: int,
                 per_sample_s: dict[str, float]) -> tuple[list[tuple[str, str, str, float | None]], float, int]:
    """Predicted seconds of each (model, method, metric) of a plan from the measured seconds per
    sample (``perf.json``'s ``suite_run.per_sample_s``, keys ``model|method|metric``; a model the
    report did not run is predicted from the same method and metric on any model). ``metrics``:
    method ("" = model scope) -> its metrics. Returns (rows, total of the known rows, unknown count)."""
    by_job: dict[tuple[str, str], list[float]] = {}
    for key, v in per_sample_s.items():
        _, method, metric = key.split("|")
        by_job.setdefault((method, metric), []).append(v)
    rows, total, unknown = [], 0.0, 0
    for model, method in cells:
        for metric in (["(explain)"] if method else []) + metrics[method]:
            v = per_sample_s.get(f"{model}|{method}|{metric}")
            if v is None and (method, metric) in by_job:
                v = sum(by_job[(method, metric)]) / len(by_job[(method, metric)])
            secs = None if v is None else v * n_samples
            rows.append((model, method, metric, secs))
            if secs is None:
                unknown += 1
            else:
                total += secs
    return rows, total, unknown


def measured_costs(suite_name: str, device: str, perf_json: str = "reports/perf/perf.json",
                   results: str = "results") -> tuple[dict[str, float], list[str]]:
    """Seconds per sample of each ``model|method|metric`` measured so far on this machine kind,
    and where they come from (newest source wins per key): ``perf.json``'s suite run, then the
    committed runs under ``results`` (recursively) on the same ``device`` -- a run of the suite
    itself last, so its own cells predict themselves."""
    import json
    from pathlib import Path

    per: dict[str, float] = {}
    used: list[str] = []
    p = Path(perf_json)
    if p.is_file():
        got = (json.loads(p.read_text()).get("suite_run") or {}).get("per_sample_s", {})
        if got:
            per.update(got)
            used.append(perf_json)
    runs = []
    for rj in sorted(Path(results).glob("**/run.json")):
        try:
            run = json.loads(rj.read_text())
        except (OSError, ValueError):
            continue  # a damaged file predicts nothing; the runs themselves check their files
        if (run.get("device") or {}).get("device", "cpu") != device or not run.get("cost"):
            continue
        runs.append((run.get("suite") == suite_name, str(rj.parent)))
    for _, d in sorted(runs):  # the suite's own runs last: they overwrite the rest
        per.update(run_cost(d)["per_sample_s"])
        used.append(d)
    return per, used


def print_dry_run(suite: Suite, only: CellFilter, perf_json: str = "reports/perf/perf.json",
                  results: str = "results") -> None:
    """The plan of ``suite`` (cells, skipped cells, samples) and its predicted cost from the
    costs measured so far (:func:`measured_costs`)."""
    from bench.pipeline.plan import make_plan

    plan = make_plan(only.include(suite) if only else suite, only)
    n = len(plan.positions)
    metrics = {"": [m.name for m in plan.model_metrics]}
    for c in plan.cells:
        if c.method:
            metrics[c.method] = [m.name for m in plan.explanation_metrics]
    print(f"run {plan.run_id}: {len(plan.cells)} cells, {n} samples, {len(plan.skipped_cells)} cells skipped")
    per_sample, used = measured_costs(suite.run.name, suite.run.device, perf_json, results)
    rows, total, unknown = predict_cost([(c.model, c.method) for c in plan.cells], metrics, n, per_sample)
    for model, method, metric, secs in rows:
        shown = "?" if secs is None else f"{secs:9.1f} s"
        print(f"  {model:<22} {method or '(model scope)':<22} {metric:<26} {shown}")
    note = f" ({unknown} rows not measured)" if unknown else ""
    if not per_sample:
        note = (f" (no measured costs: {perf_json} has no suite run and {results}/ no run on {suite.run.device}; "
                "`snnxai perf --out reports/perf --suite smoke`)")
    print(f"predicted cost: {total:.0f} s on the machine that measured it, one process{note}")
    if used:
        print("measured costs from: " + ", ".join(used))
