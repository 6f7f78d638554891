"""What a user writes to bring their own SNN: one frozen record per model.

In a suite file (``[models.NAME]``) or on the command line (``snnxai run SUITE --model
my_net.py:build --checkpoint my.pt --adapter snntorch``)::

    [models.my_net]
    adapter = "snntorch"             # "snntorch" | "spikingjelly" | "plain"
    source = "my_net.py:build"       # a Python file (relative to the suite file) and a function
    checkpoint = "my_net.pt"         # a state dict (or {"state_dict": ...}); "" = the built weights
    layers = ["lif1", "lif2"]        # module paths of the recordable spiking layers ([] = all found)
    T = 8                            # time steps
    encoding = "direct"              # "direct" (the analog image every step) | "rate" (Bernoulli)
    call = "sequence"                # how the model is called, see below
    readout = "mean"                 # output [T, B, K] -> logits [B, K]: "mean" | "sum" | "last"
    output = 0                       # which element of a tuple output holds the readout

``call``: ``"sequence"`` -- ``model(x_seq [T, B, C, H, W]) -> [T, B, K]`` (or ``[B, K]``), the
model runs its own time loop (snnTorch's explicit ``for step in range(T)`` style) or is a
multi-step model (SpikingJelly's ``step_mode = "m"``); ``"step"`` -- the adapter calls
``model(x_t [B, C, H, W]) -> [B, K]`` once per step (snnTorch's ``init_hidden=True`` style,
SpikingJelly's ``step_mode = "s"``); ``"image"`` -- ``model(x [B, C, H, W]) -> [T, B, K]`` (or
``[B, K]``): the model encodes the image itself (then ``encoding`` is not used, and its
encoding must be deterministic: suite randomness is keyed per sample only for
``encoding = "rate"``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, get_args

from bench.errors import BenchError

Adapter = Literal["snntorch", "spikingjelly", "plain"]
#: the adapters' names, as ``adapter = ...`` and ``--adapter`` take them
ADAPTERS: tuple[str, ...] = get_args(Adapter)


@dataclasses.dataclass(frozen=True)
class UserModelSpec:
    """A user's model as the suite names it (paths as written: resolved by :func:`resolve_paths`)."""

    adapter: Adapter = "snntorch"
    source: str = ""
    checkpoint: str = ""
    layers: tuple[str, ...] = ()
    T: int = 8
    encoding: Literal["direct", "rate"] = "direct"
    call: Literal["sequence", "step", "image"] = "sequence"
    readout: Literal["mean", "sum", "last"] = "mean"
    output: int = 0

    def __post_init__(self) -> None:
        if ":" not in self.source or not self.source.rpartition(":")[2]:
            raise ValueError(f"source must be 'path/to/file.py:function', got {self.source!r}")
        if self.T < 1:
            raise ValueError(f"T must be >= 1, got {self.T}")
        if self.output < 0:
            raise ValueError(f"output must be >= 0, got {self.output}")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers lists a layer twice: {list(self.layers)}")

    @property
    def file(self) -> str:
        return self.source.rpartition(":")[0]

    @property
    def function(self) -> str:
        return self.source.rpartition(":")[2]


def default_name(source: str) -> str:
    """The model name ``--model path/my_net.py:build`` gets: the file's stem (``my_net``)."""
    from pathlib import Path

    from bench.store import unsafe_name

    stem = Path(source.rpartition(":")[0]).stem
    if not stem:
        raise BenchError(f"--model must be 'path/to/file.py:function', got {source!r}")
    why = unsafe_name(stem)
    if why:  # `...py` has the stem `..`: its cells would land in the run folder's root
        raise BenchError(f"--model {source}: the file's stem {stem!r} names the model and its folders, and "
                         f"cannot ({why}); rename the file")
    return stem
