"""How an input image is shown, whatever its channel count (numpy only, no plotting).

A static input is ``[C, H, W]`` with C in {1, 3}. A time-varying one (``shapes_motion``,
event data) folds T steps into the channel axis, step-major: ``[T * C, H, W]`` where channel
``t * C + c`` is channel c of step t, C = 3 (frames) or 2 (events: ON, OFF polarity).
:func:`step_layout` recovers (T, C); :func:`step_rgb` draws one step (frames as they are,
events ON red / OFF blue on black); :func:`step_gray` is the underlay of a heatmap.
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: channels of one step that mean DVS polarity events (ON, OFF)
EVENT_CHANNELS = 2
#: gray level of an event pixel under a heatmap
EVENT_GRAY = 0.5


@dataclasses.dataclass(frozen=True)
class Layout:
    """steps: T (1 for a static image). channels: C per step."""

    steps: int
    channels: int

    @property
    def events(self) -> bool:
        return self.channels == EVENT_CHANNELS

    @property
    def temporal(self) -> bool:
        return self.steps > 1


def step_layout(channels: int, steps: int | None = None) -> Layout:
    """(T, C) of an input with ``channels`` channels.

    ``steps``: T when known (the per-step masks' or the per-step maps' time axis); used when it
    divides ``channels`` into 1-3 channels per step. Otherwise 1-3 channels are one static
    image, and more are split into 3-channel frames, else 2-channel events, else gray steps
    (a 12-channel input without a known T reads as 4 frames, not 6 event steps)."""
    if steps and steps > 1 and channels % steps == 0 and 1 <= channels // steps <= 3:
        return Layout(steps, channels // steps)
    if channels <= 3:
        return Layout(1, channels)
    for c in (3, EVENT_CHANNELS):
        if channels % c == 0:
            return Layout(channels // c, c)
    return Layout(channels, 1)


def _events_rgb(on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """``[H, W, 3]``: ON events red, OFF events blue (both: magenta), no event black."""
    on, off = np.clip(on, 0, 1), np.clip(off, 0, 1)
    return np.stack([on, np.zeros_like(on), off], axis=-1)


def step_channels(image: np.ndarray, layout: Layout, t: int | None = None) -> np.ndarray:
    """``[C, H, W]`` channels of step ``t`` of ``image`` ``[T * C, H, W]`` (None: the last step)."""
    t = layout.steps - 1 if t is None else t
    return np.asarray(image, np.float32)[t * layout.channels:(t + 1) * layout.channels]


def step_rgb(image: np.ndarray, layout: Layout, t: int | None = None) -> np.ndarray:
    """Step ``t`` (None: the last) of ``image`` ``[T * C, H, W]`` in [0, 1] for ``imshow``:
    ``[H, W]`` gray (C = 1, show with a gray colormap) or ``[H, W, 3]`` (frames; events as
    ON red / OFF blue)."""
    x = step_channels(image, layout, t)
    if layout.events:
        return _events_rgb(x[0], x[1])
    img = x.transpose(1, 2, 0)
    return img[..., 0] if img.shape[-1] == 1 else img


def mean_rgb(image: np.ndarray, layout: Layout) -> np.ndarray:
    """All steps in one image, as :func:`step_rgb`: the time-averaged frame (what the ANN
    twin of a frames SNN sees), or every step's events (each polarity's maximum over steps)."""
    x = np.asarray(image, np.float32).reshape(layout.steps, layout.channels, *np.shape(image)[1:])
    if layout.events:
        return _events_rgb(x[:, 0].max(0), x[:, 1].max(0))
    img = x.mean(0).transpose(1, 2, 0)
    return img[..., 0] if img.shape[-1] == 1 else img


def step_gray(image: np.ndarray, layout: Layout, t: int | None = None) -> np.ndarray:
    """``[H, W]`` gray underlay of step ``t`` (None: the last): the frame's channel mean, or for
    events the pixels with an event of either polarity at :data:`EVENT_GRAY` (binary events at
    full white wash out a heatmap drawn over them)."""
    x = step_channels(image, layout, t)
    if layout.events:
        return EVENT_GRAY * np.clip(x.max(0), 0, 1)
    return x.mean(0)


def all_gray(image: np.ndarray, layout: Layout) -> np.ndarray:
    """``[H, W]`` gray underlay of all steps: the time-averaged frame's channel mean, or for
    events the pixels with an event at some step."""
    steps = np.stack([step_gray(image, layout, t) for t in range(layout.steps)])
    return steps.max(0) if layout.events else steps.mean(0)
