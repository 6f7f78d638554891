"""Temporal ground truth end to end: models that read time-varying input step by step, the
metrics over time (:mod:`metrics.temporal`), and the acceptance case of issue 13: an analytic
SNN whose first layer copies its input gives SAM maps that follow the moving object with lag 0
(the VGG's layers have no synaptic delay: step t's spikes at every layer come from step t's
input), while a static baseline has no lag and a far larger residual."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from bench.data import get_dataset
from bench.data.base import Batch, load_batch
from bench.explain import Explanation, explain_batch
from bench.models.arch import VGG
from bench.models.card import ModelCard, NeuronParams
from bench.models.encoders import sequence_input
from bench.models.record import record
from bench.pipeline.cell import CellRecord, View, score_view
from bench.pipeline.memo import Memo
from bench.pipeline.plan import PlannedMetric, metric_skip_reason
from bench.registry import METRICS
from metrics import temporal as TM
from metrics.base import ScoreInput

T, SIZE = 8, 32


@pytest.fixture(scope="module")
def motion() -> Batch:
    """12 shapes_motion test samples (frames)."""
    ds = get_dataset("shapes_motion", "test", {"n_test": 12})
    return load_batch(ds, range(12))


def copy_snn() -> tuple[VGG, ModelCard]:
    """An SNN reading one channel per step whose conv1 channel 0 copies its input; its neurons
    have no memory (leak 0, zero reset, threshold 1): conv1 fires exactly where the input
    exceeds 1, at the step it does."""
    card = ModelCard(name="copy_snn", kind="snn", arch="vgg5", dataset="none", num_classes=10,
                     input_size=SIZE, in_channels=T, T=T, encoding="frames", bn="none",
                     neuron=NeuronParams(leak=0.0, threshold=1.0, reset="zero"), target_layers=("conv1",))
    torch.manual_seed(0)
    model = VGG(card).eval()
    with torch.no_grad():
        model.convs[0].weight.zero_()
        model.convs[0].bias.zero_()
        model.convs[0].weight[0, 0, 1, 1] = 1.0
    return model, card


def object_input(b: Batch) -> Batch:
    """The batch with input 2.0 on the object's pixels of each step, 0 elsewhere (one channel a step)."""
    return Batch(x=2.0 * b.step_mask.float(), y=b.y, sample_id=b.sample_id, mask=b.mask, box=b.box,
                 step_mask=b.step_mask, step_box=b.step_box, track=b.track)


def score(name: str, inp: ScoreInput, **params) -> torch.Tensor:
    e = METRICS.get(name)
    return e.obj(inp, e.make_params(params)).values


# -- models read step t at step t ---------------------------------------------------------------
def test_sequence_input_snn_reads_step_t_at_step_t_and_ann_the_mean():
    x = torch.arange(2 * 4 * 3 * 2 * 2, dtype=torch.float32).view(2, 12, 2, 2)  # B=2, T=4, C=3
    snn = sequence_input(x, 4, 4)
    assert snn.shape == (8, 3, 2, 2)
    for t in range(4):
        for b in range(2):
            assert torch.equal(snn[t * 2 + b], x[b, 3 * t:3 * t + 3])
    ann = sequence_input(x, 4, 1)
    assert torch.allclose(ann, x.view(2, 4, 3, 2, 2).mean(1))


def test_snn_spikes_before_a_changed_step_do_not_change(motion):
    from bench.models import build_model, get_card

    card = get_card("vgg5_snn_t8_frames")
    torch.manual_seed(0)
    model = build_model(card).eval()
    x = motion.x[:2]
    y = x.clone()
    y[:, 5 * 3:6 * 3] += 3.0  # change step 5's frame only
    with torch.no_grad(), record(model, ["conv2"]) as rec:
        model(x)
        a = rec.spikes["conv2"].clone()
        model(y)
        b = rec.spikes["conv2"]
    assert torch.equal(a[:5], b[:5]) and not torch.equal(a[5], b[5])


def test_ann_twin_sees_the_time_average(motion):
    from bench.models import build_model, get_card

    torch.manual_seed(0)
    ann = build_model(get_card("vgg5_ann_frames")).eval()
    x = motion.x[:3]
    shuffled = x.view(3, T, 3, SIZE, SIZE).flip(1).reshape(3, T * 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(ann(x), ann(shuffled), atol=1e-5)


# -- the acceptance case -----------------------------------------------------------------------
def test_sam_on_a_copying_snn_follows_the_object_with_lag_zero(motion):
    model, card = copy_snn()
    b = object_input(motion)
    e = explain_batch("sam", {"layer": "conv1"}, model, card, b, target=b.y)
    assert e.steps is not None and e.steps.shape == (T, len(b), SIZE, SIZE)
    # every step's argmax lies on that step's object (tolerance 0)
    for t in range(T):
        inp = ScoreInput(maps=e.steps[t], batch=b, timestep=t, steps=e.steps)
        assert score("step_pointing_game", inp, tolerance=0.0).tolist() == [1.0] * len(b)
    inp = ScoreInput(maps=e.maps, batch=b, steps=e.steps)
    assert score("tracking_lag", inp).tolist() == [0.0] * len(b)
    sam_residual = score("tracking_residual", inp)
    assert sam_residual.max() < 1.5  # centre of the spiking object vs its path point (px)

    # a static baseline does not follow: no lag, a larger residual, misses at some steps
    center = explain_batch("center", None, model, card, b, target=b.y)
    inp_c = ScoreInput(maps=center.maps, batch=b)
    assert torch.isnan(score("tracking_lag", inp_c)).all()
    assert score("tracking_residual", inp_c).mean() > 2 * sam_residual.mean() + 1.0
    hits = torch.stack([score("step_pointing_game", ScoreInput(maps=center.maps, batch=b, timestep=t),
                              tolerance=0.0) for t in range(T)])
    assert hits.mean() < 0.9
    # nor does SAM's own time-aggregated map (no per-step maps: no lag)
    assert torch.isnan(score("tracking_lag", ScoreInput(maps=e.maps, batch=b))).all()


# -- tracking: known answers -------------------------------------------------------------------
@pytest.mark.parametrize("delay", [0, 1, 2, -1])
def test_tracking_lag_recovers_a_known_delay(motion, delay):
    masks = motion.step_mask.transpose(0, 1).float()  # [T, B, H, W]
    idx = [min(max(t - delay, 0), T - 1) for t in range(T)]
    steps = masks[idx]  # the map at step t shows the object of step t - delay
    track = TM.centre_of_mass(masks)
    lag, residual, curve, lags = TM.tracking(steps, steps.mean(0), track, 3, 0.5)
    moved = (track[-1] - track[0]).norm(dim=-1) > 3  # objects that moved enough to tell lags apart
    assert moved.sum() >= 6
    assert lag[moved].tolist() == [float(delay)] * int(moved.sum())
    assert torch.allclose(residual[moved], torch.zeros(int(moved.sum())), atol=1e-4)
    assert lags == [-3, -2, -1, 0, 1, 2, 3] and curve.shape == (len(motion), 7)


def test_tracking_still_maps_and_empty_steps():
    track = torch.stack([torch.tensor([[4.0 + 2 * t, 8.0]]) for t in range(T)])  # [T, 1, 2]
    still = torch.zeros(T, 1, 24, 24)
    still[:, 0, 8, 8] = 1.0
    lag, residual, _, _ = TM.tracking(still, still[0], track, 3, 0.5)
    assert math.isnan(lag.item())
    # residual at lag 0: mean |(8.5, 8.5) - (4 + 2t, 8)|
    want = np.mean([math.hypot(8.5 - 4 - 2 * t, 0.5) for t in range(T)])
    assert residual.item() == pytest.approx(want, rel=1e-5)
    # a moving map with silent steps: the silent steps are left out
    moving = torch.zeros(T, 1, 24, 24)
    for t in range(T):
        if t not in (0, 3):
            moving[t, 0, 8, 4 + 2 * t] = 1.0
    lag, residual, _, _ = TM.tracking(moving, moving.mean(0), track, 3, 0.5)
    assert lag.item() == 0.0 and residual.item() == pytest.approx(math.hypot(0.5, 0.5), rel=1e-5)


def test_centre_of_mass_known_answer():
    m = torch.zeros(2, 4, 6)
    m[0, 1, 2] = 1.0
    m[0, 3, 4] = 3.0
    com = TM.centre_of_mass(m)
    assert com[0].tolist() == pytest.approx([(2.5 + 3 * 4.5) / 4, (1.5 + 3 * 3.5) / 4])
    assert torch.isnan(com[1]).all()


# -- per-step localization and temporal deletion -----------------------------------------------
def test_step_localization_uses_the_step_mask_and_the_union_for_the_aggregate(motion):
    b = motion
    maps = b.step_mask[:, 2].float()  # an oracle of step 2
    at2 = ScoreInput(maps=maps, batch=b, timestep=2)
    assert score("step_pointing_game", at2, tolerance=0.0).tolist() == [1.0] * len(b)
    assert score("step_energy_pointing_game", at2).tolist() == pytest.approx([1.0] * len(b))
    assert score("step_mask_auroc", at2).tolist() == pytest.approx([1.0] * len(b))
    # the same map scored at step 7: the object has moved off part of it
    at7 = ScoreInput(maps=maps, batch=b, timestep=7)
    assert score("step_energy_pointing_game", at7).mean() < 0.9
    # the aggregated row: against the union, which contains every step's mask
    assert score("step_energy_pointing_game", ScoreInput(maps=maps, batch=b)).tolist() == pytest.approx([1.0] * len(b))


def test_step_deletion_only_touches_the_step():
    x = torch.ones(1, 4 * 2, 3, 3)  # T=4, C=2
    maps = torch.zeros(1, 3, 3)
    maps[0, 1, 1] = 1.0
    one = TM.delete_pixels(x, maps, 4, 2, 1 / 9).view(1, 4, 2, 3, 3)
    assert one[0, 2, :, 1, 1].tolist() == [0.0, 0.0] and one.sum() == 8 * 9 - 2
    every = TM.delete_pixels(x, maps, 4, None, 1 / 9).view(1, 4, 2, 3, 3)
    assert every[0, :, :, 1, 1].abs().sum() == 0 and every.sum() == 8 * 9 - 8


def test_step_deletion_of_a_model_that_reads_one_step():
    """A linear model that reads only step 1's input: deleting step 1 drops its score, deleting
    step 0 does not, deleting every step drops it as much as step 1 alone."""
    class StepOne(torch.nn.Module):
        def forward(self, x, sample_id=None, seed=0):
            s = 0.1 * x.view(x.shape[0], 2, 1, 4, 4)[:, 1].flatten(1).sum(1)
            return torch.stack([s, torch.zeros_like(s)], 1)

    x = torch.ones(1, 2, 4, 4)
    mask = torch.ones(1, 2, 4, 4, dtype=torch.bool)
    b = Batch(x=x, y=torch.tensor([0]), sample_id=torch.tensor([0]), step_mask=mask)
    model = StepOne()
    fn = lambda xx, ids: model(xx)
    maps = torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(0))
    drop = {t: score("step_deletion", ScoreInput(maps=maps, batch=b, model_fn=fn, timestep=t), fraction=0.5)
            for t in (0, 1)}
    assert drop[0].item() == 0.0 and drop[1].item() > 0.1
    every = score("step_deletion_all", ScoreInput(maps=maps, batch=b, model_fn=fn, timestep=0), fraction=0.5)
    assert every.item() == pytest.approx(drop[1].item())


# -- the runner: static maps broadcast over steps; static datasets skip -----------------------
def test_runner_scores_a_static_map_at_every_step(motion):
    b = motion
    e = Explanation(maps=b.step_mask[:, 0].float(), degenerate=torch.zeros(len(b), dtype=torch.bool),
                    steps=None, steps_degenerate=None)
    ctx = types.SimpleNamespace(
        model=None, seed=0, data_mean=None, data_std=None, method_model=None, gallery=None,
        memo=Memo(), data=types.SimpleNamespace(batches=[b]),
        targets=[b.y], preds=[b.y])
    spec = METRICS.get("step_pointing_game")
    pm = PlannedMetric(name="step_pointing_game", fn=spec.obj, params=spec.make_params({"tolerance": 0.0}),
                       limit=None, needs=frozenset(spec.spec.needs), per_timestep=True, attacked=False)
    rec = CellRecord()
    score_view(ctx, rec, pm, View(0, None, b, b.y, e))
    rows = __import__("pandas").concat(rec.frames)
    assert sorted(rows["timestep"].dropna().unique().tolist()) == list(map(float, range(T)))
    at0 = rows[rows["timestep"] == 0.0]["value"]
    assert (at0 == 1.0).all()  # the map is step 0's mask


def test_temporal_metrics_are_skipped_on_static_data():
    ds = get_dataset("shapes", "test", {"n_test": 4})
    for name in ("step_pointing_game", "tracking_lag", "step_deletion"):
        assert "per-step masks" in metric_skip_reason(METRICS.get(name), ds, "shapes")
    motion = get_dataset("shapes_motion", "test", {"n_test": 4})
    assert metric_skip_reason(METRICS.get("tracking_lag"), motion, "shapes_motion") is None
