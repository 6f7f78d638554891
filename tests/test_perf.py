"""The perf harness computes real ratios (no timing asserts: only correctness of the harness)."""

import torch

from bench.perf import PerfResult, check_curve, check_sam, sam_reference_quadratic
from methods.sam import spike_activation_map


def test_quadratic_reference_matches_recursion():
    spikes = (torch.rand((7, 2, 3, 4, 4), generator=torch.Generator().manual_seed(1)) < 0.4).float()
    assert torch.allclose(sam_reference_quadratic(spikes), spike_activation_map(spikes), atol=1e-6)


def test_checks_return_positive_timings():
    r = check_sam(T=6, batch=1, channels=4, size=4, repeats=1)
    assert r.ours_s > 0 and r.baseline_s > 0 and r.ratio > 0
    c = check_curve("deletion", n_images=2, n_steps=2, repeats=1)
    assert c.ours_s > 0 and c.baseline_s > 0


def test_ratio_direction():
    assert PerfResult("a", 1.0, 4.0, "speed-up (higher is better)").ratio == 4.0
    assert PerfResult("b", 2.0, 1.0, "overhead (ideal 1.0)").ratio == 2.0


def test_paper_scale_check_on_a_small_model():
    """The --paper harness runs end to end (here on vgg5, CPU, tiny batch): one result per job,
    ratios against the forward pass, SAM and the attacks really ran (positive times)."""
    from bench.perf import check_paper

    res = check_paper("vgg5_snn_t8_poisson", batch=2, pgd_steps=1, eot=2, repeats=1)
    names = [r.name.split(" ")[0] for r in res]
    assert names == ["sam_vs_forward", "snn_gradcam_vs_forward", "pgd1_vs_forward", "pgd1_eot2_vs_forward", "forward"]
    assert all(r.ours_s > 0 and r.ratio > 0 for r in res)
    # EOT-2 does twice the backward passes of the plain attack
    assert res[3].ours_s > res[2].ours_s
