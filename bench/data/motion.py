"""``shapes_motion``: a target shape moving across the canvas over T steps, a mask per step.

The scene (:mod:`bench.data._motion`): the ``shapes`` target classes and renderer, the target
moving along a random smooth path (it may change speed or stop), clutter strokes of the same
colour moving independently, static faint distractors, a static textured background. Exact
ground truth per step: ``step_mask`` ``[T, H, W]``, ``step_box`` ``[T, 4]``, ``track`` ``[T, 2]``
(the path's point, ``(x, y)`` px); ``mask``/``box`` are their union over the steps (where the
object was at some step: what a time-aggregated map is scored against). The label is the
target's class (``index % 10``, balanced).

Two input forms of the same scenes (param ``input``; ``shapes_motion_events`` is the same
dataset with ``input = "events"``), with time folded into the channel axis, step-major
(channel ``t * C + c`` is channel c of step t), so a sample stays one ``[C', H, W]`` image and
every method, metric and attack of the suite runs unchanged on ``[B, C', H, W]`` inputs:

- ``frames``: ``image`` ``[T * 3, H, W]`` in [0, 1], frame t at instant t + 1;
- ``events``: ``image`` ``[T * 2, H, W]`` in {0, 1}, the ON/OFF events of a DVS model between
  instants t and t + 1 (:func:`bench.data._motion.events_from_frames`, log-intensity threshold
  ``event_threshold``, noise events at ``noise_rate`` per pixel, step and polarity). Normalized
  with mean 0, std 1: the model input is the event tensor itself.

Step t's mask is the object at instant t + 1 in both forms (the frame shown at step t; the end
of step t's event interval). A stopped object makes no events: its mask is still there.
Everything is deterministic from ``(seed, split, index)`` and the params.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from bench.config import config_hash, to_plain
from bench.data import Tensors, _motion, _render
from bench.data._scene import TEXTURE
from bench.data.base import Sample
from bench.data.shapes import SPLITS, Texture, check_common
from bench.errors import BenchError
from bench.registry import DATASETS

CHUNK = 128
GENERATOR_VERSION = 1
Input = Literal["frames", "events"]
#: channels of one step per input form
STEP_CHANNELS: dict[str, int] = {"frames": 3, "events": 2}
# Per-channel statistics of the frames of a train split (8000 samples x 8 steps, 32x32, seed 0,
# the 0.24-0.32 objects of the first default), repeated for every step; on today's default (0.16-0.22
# objects) the means agree to 0.001 and the stds to 0.012 (kept: the zoo's frames models were
# trained with these). tests/test_data_motion.py re-measures them.
MOTION_MEAN = (0.4980, 0.4991, 0.5006)
MOTION_STD = (0.2464, 0.2572, 0.2430)


@dataclasses.dataclass(frozen=True)
class ShapesMotionParams:
    """Generator parameters.

    steps: T, the time steps (the SNN reading this data must have the same T).
    input: ``frames`` or ``events`` (the same scenes either way).
    scale_min / scale_max: object radius as a fraction of ``image_size``: the ``headroom``
        layout's 0.16-0.22 (small targets, room to move), so the zoo's frames SNN starts from the
        static ``vgg5_snn_t8`` (trained on those sizes; 51% on these moving frames before any
        fine-tuning, 22% on 0.24-0.32 objects) and the temporal results speak of the same
        objects as the leaderboard's.
    n_clutter_max: moving clutter strokes per sample, uniform in 0..n_clutter_max.
    stop_prob: probability that the target pauses for 1..T//3 + 1 steps.
    event_threshold: the DVS contrast threshold on log intensity (``events`` only).
    noise_rate: probability of a noise event per pixel, step and polarity (``events`` only).
    """

    image_size: int = 32
    seed: int = 0
    n_train: int = 24000
    n_val: int = 1000
    n_test: int = 1000
    steps: int = 8
    input: Input = "frames"
    scale_min: float = 0.16
    scale_max: float = 0.22
    n_clutter_max: int = 1
    n_distractors_max: int = 2
    texture: Texture = "default"
    stop_prob: float = 0.25
    event_threshold: float = 0.15
    noise_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.input not in STEP_CHANNELS:
            raise ValueError(f"input must be one of {list(STEP_CHANNELS)}, got {self.input!r}")
        if self.texture not in TEXTURE:
            raise ValueError(f"texture must be one of {list(TEXTURE)}, got {self.texture!r}")
        if not 2 <= self.steps <= 64:
            raise ValueError(f"steps must be in 2..64, got {self.steps}")
        if not 0 <= self.n_clutter_max <= 4:
            raise ValueError(f"n_clutter_max must be in 0..4, got {self.n_clutter_max}")
        if not 0.0 <= self.stop_prob <= 1.0 or not 0.0 <= self.noise_rate <= 1.0:
            raise ValueError("stop_prob and noise_rate must be in [0, 1]")
        if self.event_threshold <= 0:
            raise ValueError(f"event_threshold must be > 0, got {self.event_threshold}")
        check_common(self, max_scale=0.34)


@dataclasses.dataclass(frozen=True)
class ShapesMotionEventsParams(ShapesMotionParams):
    """:class:`ShapesMotionParams` with ``input = "events"`` by default."""

    input: Input = "events"


class ShapesMotion:
    """A split of ``shapes_motion`` (satisfies ``bench.data.base.ImageDataset``, plus
    ``steps`` and ``has_step_masks``)."""

    has_masks = True
    has_boxes = True
    has_step_masks = True

    def __init__(self, name: str, split: str, params: ShapesMotionParams):
        if split not in SPLITS:
            raise BenchError(f"{name}: unknown split {split!r} (choose from {', '.join(SPLITS)})")
        self.name, self.split, self.spec = name, split, params
        self.steps = params.steps
        self.class_names = tuple(_render.SHAPES)
        self.num_classes = len(self.class_names)
        self.image_size = params.image_size
        self.channels = params.steps * STEP_CHANNELS[params.input]
        if params.input == "frames":
            self.mean, self.std = MOTION_MEAN * params.steps, MOTION_STD * params.steps
        else:
            self.mean, self.std = (0.0,) * self.channels, (1.0,) * self.channels
        self._n = {"train": params.n_train, "val": params.n_val, "test": params.n_test}[split]
        # both input forms share the stage: sample i is the same scene in either form
        self._stage = f"shapes_motion/{split}"
        self._texture = TEXTURE[params.texture]
        self._chunks: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def params(self) -> dict[str, Any]:
        """The generator params (plain data: fingerprints, model caches and zoo sidecars)."""
        return to_plain(self.spec)

    def __len__(self) -> int:
        return self._n

    def _chunk(self, c: int) -> dict[str, torch.Tensor]:
        if c not in self._chunks:
            p = self.spec
            ch = _motion.render_chunk(p, self._stage, range(c * CHUNK, min((c + 1) * CHUNK, self._n)),
                                      self._texture)
            if p.input == "events":
                ev = _motion.events_from_frames(ch["frames"].float() / 255.0, p.event_threshold,
                                                ch["event_noise"], p.noise_rate)
                inputs = ev.to(torch.uint8)
            else:
                inputs = ch["frames"][:, 1:]
            n = inputs.shape[0]
            self._chunks[c] = {"inputs": inputs.reshape(n, self.channels, self.image_size, self.image_size),
                               "labels": ch["labels"], "targets": ch["targets"][:, 1:],
                               "track": ch["track"][:, 1:], "clutter": ch["clutter"][:, 1:]}
        return self._chunks[c]

    def _scale(self, inputs: torch.Tensor) -> torch.Tensor:
        """Stored uint8 -> float image (frames: /255; events are already 0/1)."""
        return inputs.float() / 255.0 if self.spec.input == "frames" else inputs.float()

    def __getitem__(self, index: int) -> Sample:
        if not -self._n <= index < self._n:
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range ({self._n})")
        index %= self._n
        ch, j = self._chunk(index // CHUNK), index % CHUNK
        steps = ch["targets"][j]
        union = steps.any(0)
        return Sample(image=self._scale(ch["inputs"][j]), label=int(ch["labels"][j]), sample_id=index,
                      mask=union, box=_render.mask_to_box(union[None])[0],
                      step_mask=steps, step_box=_render.mask_to_box(steps), track=ch["track"][j])

    def _all(self, key: str) -> torch.Tensor:
        return torch.cat([self._chunk(c)[key] for c in range(-(-self._n // CHUNK))])

    def tensors(self) -> Tensors:
        """The whole split at once: images ``[N, C', H, W]``, masks the union ``[N, H, W]``."""
        masks = self._all("targets").any(1)
        return Tensors(images=self._scale(self._all("inputs")), labels=self._all("labels"), masks=masks,
                       boxes=_render.mask_to_box(masks), sample_ids=torch.arange(self._n))

    def step_masks(self) -> torch.Tensor:
        """``[N, T, H, W]`` bool: the target's mask at every step."""
        return self._all("targets")

    def clutter_masks(self) -> torch.Tensor:
        """``[N, T, H, W]`` bool: pixels of moving clutter at every step (may overlap the
        target's path; the target is painted over it)."""
        return self._all("clutter")

    def fingerprint(self) -> str:
        return config_hash({"dataset": self.name, "split": self.split,
                            "generator": GENERATOR_VERSION, "params": self.params})

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name}/{self.split}, n={self._n}, size={self.image_size}, "
                f"T={self.steps}, input={self.spec.input})")


@DATASETS.register(summary="a shape moving over T steps with moving clutter; a mask per step (frames or events)",
                   masks=True, boxes=True, source="embedded", step_masks=True, time_varying=True,
                   params=ShapesMotionParams)
def shapes_motion(split: str, params: ShapesMotionParams) -> ShapesMotion:
    """One moving target per sample, as T frames (default) or T steps of DVS events."""
    return ShapesMotion("shapes_motion", split, params)


@DATASETS.register(summary="shapes_motion as DVS events (ON/OFF channels per step)",
                   masks=True, boxes=True, source="embedded", step_masks=True, time_varying=True,
                   params=ShapesMotionEventsParams)
def shapes_motion_events(split: str, params: ShapesMotionEventsParams) -> ShapesMotion:
    """``shapes_motion`` with ``input = "events"`` by default."""
    return ShapesMotion("shapes_motion_events", split, params)
