"""The perf harness (``snnxai perf``) computes what it reports: the fast SAM recursion against its
quadratic reference, the ratio's direction, one result per job with a finite positive ratio.

No assertion here compares two wall-clock times: on a busy machine any such comparison can flip.
The timings themselves are what ``snnxai perf`` prints; the runs of the harness are ``slow``.
"""

import math

import pytest
import torch

import bench.perf as perf
from bench.perf import PerfResult, check_curve, check_paper, check_sam, format_results, sam_reference_quadratic
from methods.sam import spike_activation_map

PAPER_JOBS = ["sam_vs_forward", "snn_gradcam_vs_forward", "pgd1_vs_forward", "pgd1_eot2_vs_forward", "forward"]


def finite_positive(r: PerfResult) -> bool:
    return r.ours_s > 0 and r.baseline_s > 0 and math.isfinite(r.ratio) and r.ratio > 0


def test_quadratic_reference_matches_recursion():
    spikes = (torch.rand((7, 2, 3, 4, 4), generator=torch.Generator().manual_seed(1)) < 0.4).float()
    assert torch.allclose(sam_reference_quadratic(spikes), spike_activation_map(spikes), atol=1e-6)


def test_sam_check_refuses_a_recursion_that_disagrees(monkeypatch):
    """check_sam compares the outputs before it times anything: a wrong baseline is an error,
    never a ratio."""
    # SAM scores are >= 0: a reference answering -1 everywhere cannot agree by chance
    monkeypatch.setattr(perf, "sam_reference_quadratic", lambda spikes, gamma: -torch.ones_like(spikes[:, :, 0]))
    with pytest.raises(AssertionError, match="disagree"):
        check_sam(T=3, batch=1, channels=2, size=2, repeats=1)


def test_ratio_direction_and_table():
    speed, overhead = PerfResult("a", 1.0, 4.0, "speed-up (higher is better)"), PerfResult("b", 2.0, 1.0, "overhead (ideal 1.0)")
    assert speed.ratio == 4.0 and overhead.ratio == 2.0
    lines = format_results([speed, overhead]).splitlines()
    assert len(lines) == 4 and lines[2].split()[:4] == ["a", "1.000", "4.000", "4.00"]
    assert lines[3].split()[:4] == ["b", "2.000", "1.000", "2.00"]


@pytest.mark.slow
def test_checks_report_one_finite_ratio_each():
    r = check_sam(T=6, batch=1, channels=4, size=4, repeats=1)
    c = check_curve("deletion", n_images=2, n_steps=2, repeats=1)
    assert r.name.startswith("sam_vs_reference (T=6") and c.name.startswith("deletion_vs_forward (vgg5_snn_t8")
    assert finite_positive(r) and finite_positive(c)


@pytest.mark.slow
def test_paper_scale_check_on_a_small_model():
    """The --paper harness runs end to end (here on vgg5, CPU, tiny batch): one result per job,
    each a finite positive ratio against the forward pass."""
    res = check_paper("vgg5_snn_t8_poisson", batch=2, pgd_steps=1, eot=2, repeats=1)
    assert [r.name.split(" ")[0] for r in res] == PAPER_JOBS
    assert all(finite_positive(r) for r in res)
    assert res[-1].ratio == 1.0 and "cpu" in res[-1].name


@pytest.mark.gpu
@pytest.mark.slow
def test_paper_scale_check_on_cuda():
    """The same on the GPU, where the forward result also reports the peak device memory."""
    res = check_paper("vgg5_snn_t8_poisson", batch=2, device="cuda", pgd_steps=1, eot=2, repeats=1)
    assert [r.name.split(" ")[0] for r in res] == PAPER_JOBS
    assert all(finite_positive(r) for r in res)
    assert "cuda" in res[-1].name and "peak nan" not in res[-1].name
