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
    input = "normalized"             # what the model was trained on: "normalized" | "pixels" ([0, 1])

``call``: ``"sequence"`` -- ``model(x_seq [T, B, C, H, W]) -> [T, B, K]`` (or ``[B, K]``), the
model runs its own time loop (snnTorch's explicit ``for step in range(T)`` style) or is a
multi-step model (SpikingJelly's ``step_mode = "m"``); ``"step"`` -- the adapter calls
``model(x_t [B, C, H, W]) -> [B, K]`` once per step (snnTorch's ``init_hidden=True`` style,
SpikingJelly's ``step_mode = "s"``); ``"image"`` -- ``model(x [B, C, H, W]) -> [T, B, K]`` (or
``[B, K]``): the model encodes the image itself (then ``encoding`` is not used, and its
encoding must be deterministic: suite randomness is keyed per sample only for
``encoding = "rate"``).

``input``: the suite hands every model the dataset-normalized image, ``(pixels - mean) / std``
per channel with the dataset's ``mean``/``std`` (~0.5 and ~0.24 for CIFAR-10; :mod:`bench.data`).
``"normalized"`` (the default) feeds it as is; ``"pixels"`` first maps it back to the [0, 1] pixels (``x * std + mean``), for a
model trained on ``ToTensor()`` images without ``Normalize``. ``"rate"`` encoding draws its
spikes from the [0, 1] pixels either way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
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
    # omitted from plain data at its default: suites and run ids written before it stay the same
    input: Literal["normalized", "pixels"] = dataclasses.field(default="normalized",
                                                               metadata={"omit_default": True})

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


#: the builder that keeps the file's stem as its model name when a file has several
PRIMARY_BUILDER = "build"


def _builders(file: str) -> list[str] | None:
    """The public top-level functions of ``file`` that can be called without arguments (what
    ``file.py:function`` may name), by parsing it (nothing is imported); None if unreadable."""
    import ast

    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    out = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
            a = node.args
            required = len(a.posonlyargs) + len(a.args) - len(a.defaults) \
                + sum(d is None for d in a.kw_defaults)
            if required == 0:
                out.append(node.name)
    return out


def default_name(source: str) -> str:
    """The model name ``--model path/my_net.py:FUNCTION`` gets, unique per (file, function):
    the file's stem (``my_net``) when FUNCTION is the file's only builder (a public top-level
    function callable without arguments) or is the builder named ``build``; else
    ``stem_function`` (``net.py:build_a`` -> ``net_build_a``, ``net.py:build_b`` ->
    ``net_build_b``, ``my_net.py:build_wide`` -> ``my_net_build_wide`` next to ``build``; a
    class always gets ``stem_Class``). Every name before this rule was the stem, so the runs of
    ``file.py:build`` and of single-builder files keep their names (and run ids). A file that
    cannot be parsed keeps the stem (its import fails later, with the reason)."""
    from bench.store import unsafe_name

    file, _, fn = source.rpartition(":")
    stem = Path(file).stem
    if not stem:
        raise BenchError(f"--model must be 'path/to/file.py:function', got {source!r}")
    why = unsafe_name(stem)
    if why:  # `...py` has the stem `..`: its cells would land in the run folder's root
        raise BenchError(f"--model {source}: the file's stem {stem!r} names the model and its folders, and "
                         f"cannot ({why}); rename the file")
    builders = _builders(file)
    if builders is None or builders == [fn] or (fn == PRIMARY_BUILDER and fn in builders):
        return stem
    name = f"{stem}_{fn}"
    why = unsafe_name(name)
    if why:
        raise BenchError(f"--model {source}: the model name {name!r} cannot name a file ({why})")
    return name
