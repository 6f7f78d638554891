"""``shapes_motion``: determinism, exact per-step masks, the moving target and clutter, the two
input forms of one scene, the DVS event model's known answers and the normalization constants."""

from __future__ import annotations

import pytest
import torch

from bench.data import _motion, _render, get_dataset
from bench.data.base import load_batch, step_masks
from bench.data.motion import MOTION_MEAN, MOTION_STD
from bench.errors import BenchError
from bench.registry import DATASETS

SMALL = {"n_train": 40, "n_val": 8, "n_test": 24}
T = 8


def fresh(name: str = "shapes_motion", split: str = "test", **params):
    """A new (not memoized) instance, so determinism is tested across instances."""
    entry = DATASETS.get(name)
    return entry.obj(split, entry.make_params({**SMALL, **params}))


@pytest.fixture(scope="module")
def frames():
    return fresh()


@pytest.fixture(scope="module")
def events():
    return fresh("shapes_motion_events")


def test_shapes_and_fields(frames, events):
    s = frames[5]
    assert s.image.shape == (T * 3, 32, 32) and 0 <= s.image.min() and s.image.max() <= 1
    assert s.step_mask.shape == (T, 32, 32) and s.step_box.shape == (T, 4) and s.track.shape == (T, 2)
    assert s.label == 5 and frames.channels == 24 and frames.steps == T and frames.has_step_masks
    e = events[5]
    assert e.image.shape == (T * 2, 32, 32) and set(e.image.unique().tolist()) <= {0.0, 1.0}
    assert events.channels == 16 and events.mean == (0.0,) * 16 and events.std == (1.0,) * 16


def test_deterministic_and_same_scene_in_both_forms(frames, events):
    again = fresh()
    for i in (0, 7, 23):
        assert torch.equal(frames[i].image, again[i].image)
        assert torch.equal(frames[i].step_mask, events[i].step_mask)
        assert torch.equal(frames[i].track, events[i].track)
    assert frames.fingerprint() == again.fingerprint() != fresh(seed=1).fingerprint()
    assert not torch.equal(fresh(seed=1)[0].image, frames[0].image)


def test_masks_are_exact_and_the_target_moves(frames):
    for i in range(len(frames)):
        s = frames[i]
        img = s.image.view(T, 3, 32, 32)
        assert torch.equal(s.mask, s.step_mask.any(0))
        assert torch.equal(s.step_box, _render.mask_to_box(s.step_mask))
        for t in range(T):
            m = s.step_mask[t]
            assert m.sum() > 20
            # the target is painted in one colour, plus static pixel noise (same at every step)
            colour = img[t][:, m]
            assert (colour - colour.median(1, keepdim=True).values).abs().max() < 0.2
            x0, y0, x1, y1 = s.step_box[t].tolist()
            assert x0 - 1 <= s.track[t, 0] <= x1 + 1 and y0 - 1 <= s.track[t, 1] <= y1 + 1
    tracks = torch.stack([frames[i].track for i in range(len(frames))])
    travel = (tracks[:, -1] - tracks[:, 0]).norm(dim=-1)
    assert travel.mean() > 6 and (travel > 2).float().mean() > 0.9


def test_clutter_moves_and_stays_in_the_image(frames):
    clutter = frames.clutter_masks()  # [N, T, H, W]
    some = clutter.flatten(2).any(2).all(1)
    assert some.float().mean() > 0.3
    moved = (clutter[some, 0] != clutter[some, -1]).flatten(1).any(1)
    assert moved.float().mean() > 0.8


def test_batch_carries_step_masks_batch_first(frames):
    b = load_batch(frames, [0, 3, 4])
    assert b.step_mask.shape == (3, T, 32, 32) and b.track.shape == (3, T, 2)
    assert torch.equal(step_masks(b)[2, 1], frames[3].step_mask[2])
    sel = b.select(torch.tensor([1]))
    assert torch.equal(sel.step_mask[0], frames[3].step_mask)
    static = get_dataset("shapes", "test", {"n_test": 2})
    sb = load_batch(static, [0, 1])
    assert sb.step_mask is None and step_masks(sb, 4).shape == (4, 2, 32, 32)
    assert torch.equal(step_masks(sb, 4)[3], sb.mask)


def test_events_come_from_moving_things_only(frames, events):
    for i in range(len(events)):
        ev = events[i].image.view(T, 2, 32, 32).amax(1).bool()
        moving = frames[i].step_mask | frames.clutter_masks()[i]
        before = torch.cat([frames[i].step_mask[:1], frames[i].step_mask[:-1]])  # (step 0: approx.)
        near = _render.dilate(moving | before | frames.clutter_masks()[i].roll(1, 0), 1)
        assert not (ev[1:] & ~near[1:]).any()


def test_dvs_model_known_answers():
    """Luminance 0.2 -> 0.8 -> 0.8 -> 0.2: log change +1.2 (ON), none, -1.2 (OFF); a slow ramp
    whose log steps are 0.6 threshold each fires every other step (the reference accumulates)."""
    lum = torch.tensor([0.2, 0.8, 0.8, 0.2])
    frames = lum.view(1, 4, 1, 1, 1).expand(1, 4, 3, 1, 1)
    ev = _motion.events_from_frames(frames, threshold=0.3)
    assert ev[0, :, :, 0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
    theta = 0.5
    logs = torch.log(torch.tensor(0.3)) + 0.6 * theta * torch.arange(5)
    ramp = (logs.exp() - _motion.LOG_EPS).view(1, 5, 1, 1, 1).expand(1, 5, 3, 1, 1)
    ev = _motion.events_from_frames(ramp, threshold=theta)
    assert ev[0, :, 0, 0, 0].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_noise_events_at_the_asked_rate():
    quiet = fresh("shapes_motion_events", n_test=8)
    noisy = fresh("shapes_motion_events", n_test=8, noise_rate=0.05)
    a = torch.stack([quiet[i].image for i in range(8)])
    b = torch.stack([noisy[i].image for i in range(8)])
    assert (a <= b).all()  # noise only adds events
    added = ((b - a) > 0).float().sum() / (b.numel() - a.sum())
    assert 0.04 < added < 0.06


def test_bad_params_are_rejected():
    with pytest.raises(BenchError):
        get_dataset("shapes_motion", "test", {"input": "video"})
    with pytest.raises(BenchError):
        get_dataset("shapes_motion", "test", {"steps": 1})
    with pytest.raises(BenchError):
        get_dataset("shapes_motion", "nope", {})


@pytest.mark.slow
def test_normalization_constants():
    ds = fresh(split="train", n_train=1000)
    t = ds.tensors().images.view(1000, T, 3, 32, 32).transpose(0, 2).reshape(3, -1)
    # the constants are measured on all 8000 train samples; the first 1000 differ by the
    # spread of the per-image background colour (about 0.01)
    assert t.mean(1).tolist() == pytest.approx(MOTION_MEAN, abs=0.02)
    assert t.std(1).tolist() == pytest.approx(MOTION_STD, abs=0.02)
