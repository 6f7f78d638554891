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
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import torch

from methods.sam import spike_activation_map


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
    from metrics.faithfulness import deletion_curve, insertion_curve

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
    from bench.explain import explain_batch
    from bench.data.base import Batch
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
