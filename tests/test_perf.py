"""The perf harness (``snnxai perf``) computes what it reports: the fast SAM recursion against its
quadratic reference, the ratio's direction, one result per job with a finite positive ratio.

No assertion here compares two wall-clock times: on a busy machine any such comparison can flip.
The timings themselves are what ``snnxai perf`` prints; the runs of the harness are ``slow``.
"""

import math

import pytest
import torch

import bench.perf as perf
from bench.cli import main as cli_main
from bench.perf import (
    Figure,
    PerfResult,
    check_curve,
    check_paper,
    check_sam,
    format_results,
    predict_cost,
    report_markdown,
    run_cost,
    sam_reference_per_image,
    sam_reference_quadratic,
)
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


# -- the performance report (snnxai perf --out) ---------------------------------------------------
def test_per_image_reference_equals_the_batched_recursion():
    spikes = (torch.rand((6, 3, 2, 3, 3), generator=torch.Generator().manual_seed(4)) < 0.5).float()
    ref = sam_reference_per_image(spikes, 0.3)
    assert ref.shape == (6, 3, 3, 3)
    assert torch.allclose(ref, spike_activation_map(spikes, 0.3), atol=1e-6)


def test_figure_ratio_target_and_skip():
    fast = Figure("a", "ours", "peer", "speed-up", ">= 20", ours_s=0.5, peer_s=12.0)
    slow = Figure("b", "ours", "peer", "overhead", "<= 1.1", ours_s=1.5, peer_s=1.0)
    skipped = Figure("c", "ours", "torchattacks.PGD", "speed-up", ">= 1.0", note="torchattacks not installed")
    assert fast.ratio == 24.0 and fast.met is True
    assert slow.ratio == 1.5 and slow.met is False
    assert skipped.ratio is None and skipped.met is None and skipped.record()["ratio"] is None
    report = {"sizes": {"repeats": 3}, "torch": "x", "threads": 2, "peak_rss_gib_harness": 1.5,
              "figures": [f.record() for f in (fast, slow, skipped)],
              "suite_run": {"command": "run smoke", "wall_s": 9.0, "peak_rss_gib": 2.0,
                            "per_sample_s": {"m|sam|deletion": 0.25, "m||adversarial_accuracy": 0.5}}}
    md = report_markdown(report).splitlines()
    row = {line.split(" | ")[0].strip("| "): line for line in md if line.startswith("| ")}
    assert "| 24.00 x faster | >= 20 | yes |" in row["a"] and "| 1.50 x the peer's time | <= 1.1 | no |" in row["b"]
    assert "skipped" in row["c"] and "torchattacks not installed" in row["c"]
    assert "| m | (model scope) | adversarial_accuracy | 0.5000 |" in md


def test_cost_per_cell_and_prediction(tmp_path):
    """run.json's cost records -> seconds per sample per (model, method, metric) -> a plan's cost."""
    cost = [{"model": "m", "method": "sam", "metric": "", "stage": "explain", "n_samples": 4, "wall_s": 2.0},
            {"model": "m", "method": "sam", "metric": "deletion", "stage": "score", "n_samples": 4, "wall_s": 1.0},
            {"model": "m", "method": "", "metric": "acc", "stage": "score", "n_samples": 4, "wall_s": 0.4}]
    (tmp_path / "run.json").write_text(__import__("json").dumps({"cost": cost, "timing": {"wall_s": 5.0}}))
    per = run_cost(str(tmp_path))["per_sample_s"]
    assert per == {"m|sam|(explain)": 0.5, "m|sam|deletion": 0.25, "m||acc": 0.1}
    rows, total, unknown = predict_cost([("m", "sam"), ("other", "sam"), ("m", "")],
                                        {"sam": ["deletion", "pointing_game"], "": ["acc"]}, 10, per)
    secs = {(r[0], r[1], r[2]): r[3] for r in rows}
    assert secs[("m", "sam", "(explain)")] == 5.0 and secs[("other", "sam", "deletion")] == 2.5  # other model: same job
    assert secs[("m", "sam", "pointing_game")] is None and unknown == 2
    assert total == pytest.approx(5.0 + 2.5 + 5.0 + 2.5 + 1.0)


def test_report_options_need_out(capsys):
    assert cli_main(["perf", "--small"]) == 2
    assert "add --out DIR" in capsys.readouterr().err
    assert cli_main(["perf", "--out", "x", "--quick"]) == 2


@pytest.mark.slow
def test_small_report_writes_every_figure(tmp_path, capsys):
    """``snnxai perf --out DIR --small``: perf.json holds one finite ratio per figure (or a skip
    note), and the markdown table one row each."""
    assert cli_main(["perf", "--out", str(tmp_path), "--small"]) == 0
    rep = __import__("json").loads((tmp_path / "perf.json").read_text())
    names = [f["name"].split(" (")[0] for f in rep["figures"]]
    assert names[:5] == ["SAM vs reference loop", "SAM vs its recorded forward",
                         "deletion + insertion vs per-image loop", "deletion + insertion vs bare forwards",
                         "SNN training step vs snnTorch"]
    for f in rep["figures"]:
        assert (f["ratio"] is not None and math.isfinite(f["ratio"]) and f["ratio"] > 0) or f["note"]
    assert rep["peak_rss_gib_harness"] > 0
    # the curves' speed-up carries what batching alone can gain: the loop over the bare forwards
    curves = next(f for f in rep["figures"] if f["name"].startswith("deletion + insertion vs per-image loop"))
    bare = next(f for f in rep["figures"] if f["name"].startswith("deletion + insertion vs bare forwards"))
    assert curves["extra"]["loop_over_forwards"] == pytest.approx(curves["peer_s"] / bare["peer_s"], abs=0.01)
    md = (tmp_path / "README.md").read_text()
    assert sum(line.startswith("| ") for line in md.splitlines()) == len(rep["figures"]) + 1


@pytest.mark.slow
def test_dry_run_prints_the_plan_and_its_predicted_cost(tmp_path, monkeypatch, capsys):
    """``snnxai run smoke --dry-run`` writes nothing and predicts from reports/perf/perf.json."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports" / "perf").mkdir(parents=True)
    per = {"vgg5_snn_t8|sam|(explain)": 0.5, "vgg5_snn_t8|sam|deletion": 0.25}
    (tmp_path / "reports" / "perf" / "perf.json").write_text(
        __import__("json").dumps({"suite_run": {"per_sample_s": per}}))
    assert cli_main(["run", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run smoke-") and " cells, 8 samples" in out.splitlines()[0]
    assert "predicted cost: 6 s" in out          # (0.5 + 0.25) s per sample x 8 samples
    assert not (tmp_path / "runs").exists()


def test_measured_costs_prefer_the_suites_own_run_and_skip_other_devices(tmp_path):
    """Costs per sample come from perf.json, then the committed runs on the same device; a run
    of the suite itself overrides the rest, a CUDA run never predicts a CPU plan."""
    import json

    from bench.perf import measured_costs

    perf = tmp_path / "perf.json"
    perf.write_text(json.dumps({"suite_run": {"per_sample_s": {"m|sam|(explain)": 1.0, "m|sam|deletion": 2.0}}}))

    def run(name: str, suite: str, device: str, wall: float) -> None:
        d = tmp_path / "results" / name
        d.mkdir(parents=True)
        cost = [{"model": "m", "method": "sam", "metric": "", "stage": "explain", "n_samples": 10, "wall_s": wall}]
        d.joinpath("run.json").write_text(json.dumps({"suite": suite, "device": {"device": device}, "cost": cost}))

    run("a_own", "lb", "cpu", 30.0)      # 3 s per sample: the suite's own run
    run("b_other", "smoke", "cpu", 50.0)  # 5 s per sample: another suite, read before the own run
    run("c_gpu", "lb", "cuda", 0.1)       # another device: ignored
    per, used = measured_costs("lb", "cpu", str(perf), str(tmp_path / "results"))
    assert per == {"m|sam|(explain)": 3.0, "m|sam|deletion": 2.0}
    assert used == [str(perf), str(tmp_path / "results" / "b_other"), str(tmp_path / "results" / "a_own")]
    per, _ = measured_costs("smoke", "cpu", str(perf), str(tmp_path / "results"))
    assert per["m|sam|(explain)"] == 5.0
    per, used = measured_costs("lb", "cuda", str(tmp_path / "none.json"), str(tmp_path / "results"))
    assert per == {"m|sam|(explain)": 0.01} and used == [str(tmp_path / "results" / "c_gpu")]
