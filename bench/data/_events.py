"""Shared pieces of the event-camera datasets read from local folders (``nmnist``, ``dvs_gesture``).

A recording is a list of events ``(x, y, t, p)``: pixel column x, pixel row y (the sensor's
address, no flip), timestamp t in microseconds, polarity p (1 = ON, brightness up; 0 = OFF).
A sample is the events of a time window ``[t0, t1)`` binned into ``steps`` frames, in the layout
of ``shapes_motion_events`` (:mod:`bench.data.motion`): ``image`` ``[steps * 2, S, S]``, time
folded into the channels step-major, channel ``2 t`` the ON events of step t, ``2 t + 1`` the
OFF events; the SNN reads step t's two channels at step t (:func:`bench.models.encoders.sequence_input`).

Binning (:func:`bin_events`), exact integer arithmetic:

- time: ``steps`` equal bins over the window, event at t in bin ``(t - t0) * steps // (t1 - t0)``;
  events outside ``[t0, t1)`` are dropped.
- space: sensor pixel (x, y) of a ``W x H`` sensor goes to output pixel
  ``(x * S // W, y * S // H)``: with S < W each output pixel pools a block of sensor pixels
  (exactly 4x4 for DVS128 at S = 32; 1 or 2 pixels per axis for N-MNIST's 34 at 32).
- value: 1 where at least one event of that polarity fell in that pixel and bin, else 0. Counts
  are clipped to {0, 1} on purpose: the ``*_events`` model cards were trained on {0, 1} events
  (``shapes_motion_events``), the data contract keeps images in [0, 1], and perturbation
  metrics and attacks clamp inputs to that range; a count would mean something else to them.

Normalization is mean 0, std 1 (as for ``shapes_motion_events``): the model input is the event
tensor itself. There are no object masks or boxes (``has_masks = False``), so metrics that need
them are skipped with a logged reason (:func:`bench.pipeline.plan.metric_skip_reason`). Sample ids are
positions in the sorted listing (stable for a given folder; the fingerprint records the listing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import NamedTuple, Protocol

import numpy as np
import torch

from bench.config import to_plain
from bench.data._folder import listing_fingerprint
from bench.data.base import Sample
from bench.errors import BenchError

#: bumped when the reading or binning of any event dataset changes (part of the fingerprint)
READER_VERSION = 1
#: event channels of one step: ON, OFF (as in ``shapes_motion_events``)
STEP_CHANNELS = 2
EVENTS_EXTRA = "install the events extra: pip install 'snn-xai-bench[events]'"


def require_tonic(dataset: str) -> ModuleType:
    """``tonic.io``, or a one-line BenchError saying how to install it (nothing is downloaded)."""
    try:
        import tonic.io
    except ImportError:
        raise BenchError(f"{dataset} reads its files with the tonic package, which is not installed: "
                         f"{EVENTS_EXTRA}") from None
    return tonic.io


class Events(NamedTuple):
    """A recording's events, four ``[N]`` int64 arrays: x (column), y (row), t (µs), p (1 ON, 0 OFF)."""

    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    p: np.ndarray

    def window(self, t0: int, t1: int) -> Events:
        """The events with ``t0 <= t < t1``."""
        keep = (self.t >= t0) & (self.t < t1)
        return Events(self.x[keep], self.y[keep], self.t[keep], self.p[keep])


def events_of(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray) -> Events:
    """:class:`Events` with every field as int64 (the readers' dtypes vary)."""
    return Events(*(np.asarray(a).astype(np.int64) for a in (x, y, t, p)))


def bin_events(ev: Events, t0: int, t1: int, steps: int, sensor: tuple[int, int], size: int) -> torch.Tensor:
    """Events -> ``[steps * 2, size, size]`` uint8 in {0, 1} (see the module doc).

    ``sensor``: ``(width, height)`` of the sensor; every event must lie on it (callers check).
    ``[t0, t1)``: the window; ``t1 > t0``.
    """
    width, height = sensor
    ev = ev.window(t0, t1)
    step = (ev.t - t0) * steps // (t1 - t0)
    channel = step * STEP_CHANNELS + (1 - ev.p)  # ON (p = 1) -> channel 2t, OFF -> 2t + 1
    row, col = ev.y * size // height, ev.x * size // width
    flat = np.zeros(steps * STEP_CHANNELS * size * size, dtype=np.uint8)
    flat[(channel * size + row) * size + col] = 1
    return torch.from_numpy(flat.reshape(steps * STEP_CHANNELS, size, size))


def check_on_sensor(ev: Events, sensor: tuple[int, int], where: Path) -> None:
    """BenchError when an event lies off the ``(width, height)`` sensor (a corrupt or foreign file)."""
    width, height = sensor
    bad = (ev.x < 0) | (ev.x >= width) | (ev.y < 0) | (ev.y >= height) | ((ev.p != 0) & (ev.p != 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BenchError(f"{where}: event (x={ev.x[i]}, y={ev.y[i]}, p={ev.p[i]}) is not on the "
                         f"{width}x{height} sensor; not a file of this dataset, or corrupt")


class Recording(NamedTuple):
    """One sample: the file holding its events, its class index and its time window in µs
    (``None``: the whole recording, from its first event to its last)."""

    path: Path
    label: int
    window: tuple[int, int] | None = None


class EventParams(Protocol):
    """What :class:`EventDataset` reads of a factory's (frozen) params dataclass."""

    @property
    def steps(self) -> int: ...

    @property
    def image_size(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class Sensor:
    """The camera of a dataset: ``width x height`` pixels and a reader ``path -> Events``."""

    width: int
    height: int
    read: Callable[[Path], Events]


class EventDataset:
    """Recordings read from files on demand and binned into frames (satisfies
    ``bench.data.base.ImageDataset``, plus ``steps`` like ``shapes_motion``).

    ``params``: the factory's params dataclass. ``annotations``: label and split files, part of the fingerprint.
    """

    has_masks = False
    has_boxes = False
    has_step_masks = False

    def __init__(self, name: str, split: str, params: EventParams, base: Path, sensor: Sensor,
                 recordings: list[Recording], class_names: Sequence[str], annotations: Sequence[Path] = ()):
        self.name, self.split, self.spec, self.base, self.sensor = name, split, params, base, sensor
        self.recordings, self.annotations = recordings, tuple(annotations)
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.steps, self.image_size = params.steps, params.image_size
        self.channels = self.steps * STEP_CHANNELS
        self.mean, self.std = (0.0,) * self.channels, (1.0,) * self.channels
        self._last: tuple[Path, Events] | None = None  # a trial file holds many consecutive samples
        self._fingerprint: str | None = None

    @property
    def params(self) -> dict[str, object]:
        """The params as plain data (model caches and run records)."""
        return to_plain(self.spec)

    def __len__(self) -> int:
        return len(self.recordings)

    def events(self, path: Path) -> Events:
        """All events of ``path`` (the last file read is kept: consecutive samples share it)."""
        if self._last is None or self._last[0] != path:
            ev = self.sensor.read(path)
            check_on_sensor(ev, (self.sensor.width, self.sensor.height), path)
            self._last = (path, ev)
        return self._last[1]

    def frames(self, index: int) -> torch.Tensor:
        """Sample ``index``'s ``[steps * 2, S, S]`` uint8 event frames."""
        rec = self.recordings[index]
        ev = self.events(rec.path)
        if rec.window is not None:
            t0, t1 = rec.window
        elif len(ev.t):
            t0, t1 = int(ev.t.min()), int(ev.t.max()) + 1  # half-open: the last event is inside
        else:  # scored as all-zero frames it would be a silent wrong sample, not a measurement
            raise BenchError(f"{self.name}: recording {rec.path} holds no events (an empty or unreadable "
                             "recording); remove it from the folder or restore it")
        return bin_events(ev, t0, t1, self.steps, (self.sensor.width, self.sensor.height), self.image_size)

    def __getitem__(self, index: int) -> Sample:
        n = len(self.recordings)
        if not -n <= index < n:
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range ({n})")
        index %= n
        return Sample(image=self.frames(index).float(), label=self.recordings[index].label, sample_id=index)

    def fingerprint(self) -> str:
        """Hash of the sorted file listing with sizes, the label/split files and the binning params."""
        if self._fingerprint is None:
            files = sorted({r.path for r in self.recordings} | set(self.annotations))
            self._fingerprint = listing_fingerprint(
                self.name, self.split, self.base, files,
                extra=(READER_VERSION, self.steps, self.image_size))
        return self._fingerprint

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name}/{self.split}, n={len(self)}, size={self.image_size}, "
                f"T={self.steps}, root={self.base})")


def check_geometry(steps: int, image_size: int, sensor_size: int) -> None:
    """ValueError (a bad param, reported as one line) unless 1 <= steps <= 256 and 8 <= image_size <= sensor."""
    if not 1 <= steps <= 256:
        raise ValueError(f"steps must be in 1..256, got {steps}")
    if not 8 <= image_size <= sensor_size:
        raise ValueError(f"image_size must be in 8..{sensor_size} (the sensor's size; events are "
                         f"pooled down, never up), got {image_size}")
