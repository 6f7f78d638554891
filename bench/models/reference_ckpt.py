"""Checkpoint files for a card's model: this project's state dict or the SAM reference code's format.

The reference code (Kim & Panda 2021, Sci. Rep. 11:19037; GitHub repository
Intelligent-Computing-Lab-Yale/Visual-Explanations-from-Spiking-Neural-Networks-using-Interspike-Intervals,
``model.py``) names its VGG's tensors per layer and time step; :func:`reference_names` maps them
onto a :class:`~bench.models.arch.VGG` with BNTT::

    ours                                  reference
    convs.{i-1}.weight                    conv{i}.weight
    norms.{i-1}.steps.{t}.{p}             bn{i}_list.{t}.{p}     p: weight, running_mean, running_var,
                                                                 num_batches_tracked
    fcs.0.weight                          fc1.weight
    fc_norms.0.steps.{t}.{p}              bnfc_list.{t}.{p}
    head.weight                           fc2.weight             (fc{hidden fcs + 1})

A file may hold the state dict itself or wrap it (``{"state_dict": ..., "accuracy1": ...}`` as the
authors' checkpoint does, or ``"net"`` / ``"model"``), and its keys may carry DataParallel's
``module.`` prefix. The format is detected from the keys (``conv1.weight`` is the reference's
first tensor). Unlike the reference code, which silently keeps random initial weights for keys it
does not find, a missing, mis-shaped or unexpected key is a :class:`BenchError` naming the first
one. Two entries are not weights and may be absent: ``num_batches_tracked`` (BatchNorm's counter;
torch itself fills it for old checkpoints) and the plain Poisson coding's ``input_mean`` /
``input_std`` buffers (dataset statistics, set when the model is built); the model keeps its own.

The reference format fixes the weights only: the reference code's model fires, then integrates
(``NeuronParams.order = "fire_integrate"``), which the card must say for the weights to compute
what they computed there (``vgg11_snn_t30`` does).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from bench.errors import BenchError
from bench.models.arch import VGG

WRAPPERS = ("state_dict", "net", "model")  # keys under which training scripts nest the state dict
OPTIONAL = ("num_batches_tracked",)        # trailing name parts that are counters, not weights
KEEP = ("input_mean", "input_std")         # buffers set from the dataset when the model is built

_CONV = re.compile(r"convs\.(\d+)\.(weight|bias)")
_NORM = re.compile(r"norms\.(\d+)\.steps\.(\d+)\.(\w+)")
_FC = re.compile(r"fcs\.(\d+)\.(weight|bias)")
_FC_NORM = re.compile(r"fc_norms\.(\d+)\.steps\.(\d+)\.(\w+)")
_HEAD = re.compile(r"head\.(weight|bias)")


def reference_name(key: str, n_hidden_fc: int) -> str:
    """The reference code's name of our state-dict entry ``key`` (of a VGG with ``n_hidden_fc``
    spiking fc layers); BenchError for an entry the reference format cannot hold."""
    if m := _CONV.fullmatch(key):
        return f"conv{int(m[1]) + 1}.{m[2]}"
    if m := _NORM.fullmatch(key):
        return f"bn{int(m[1]) + 1}_list.{m[2]}.{m[3]}"
    if m := _FC.fullmatch(key):
        return f"fc{int(m[1]) + 1}.{m[2]}"
    if (m := _FC_NORM.fullmatch(key)) and m[1] == "0":
        return f"bnfc_list.{m[2]}.{m[3]}"  # the reference names a single list: one hidden fc only
    if m := _HEAD.fullmatch(key):
        return f"fc{n_hidden_fc + 1}.{m[1]}"
    raise BenchError(f"the reference checkpoint format has no name for {key!r} (it holds VGGs with "
                     "BNTT and at most one hidden fc layer)")


def reference_names(model: VGG) -> dict[str, str]:
    """``{our key: reference key}`` for every weight of ``model`` (a VGG; ``KEEP`` buffers left out)."""
    n_fc = len(getattr(model, "fcs", ()))
    return {k: reference_name(k, n_fc) for k in model.state_dict() if k not in KEEP}


def unwrap(obj: object, where: str) -> dict[str, torch.Tensor]:
    """A loaded checkpoint -> its flat state dict: a wrapper's ``state_dict``/``net``/``model``
    entry taken, DataParallel's ``module.`` prefix stripped (from every key that has it)."""
    for key in WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise BenchError(f"checkpoint {where} holds a {type(obj).__name__}, not a state dict")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise BenchError(f"checkpoint {where}: entry {bad!r} is a {type(state[bad]).__name__}, not a tensor")
    return state


def is_reference_format(state: dict[str, torch.Tensor]) -> bool:
    """Whether an unwrapped state dict is in the reference code's naming (``conv1.weight``)."""
    return "conv1.weight" in state


def _pick(state: dict[str, torch.Tensor], names: dict[str, str], model: VGG,
          where: str) -> dict[str, torch.Tensor]:
    """``{our key: tensor}`` from ``state`` (keys ``names[our key]``), checked key by key in the
    model's order: the first missing, mis-shaped or (then) unexpected key is a BenchError."""
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for ours, theirs in names.items():
        if theirs not in state:
            if theirs.rsplit(".", 1)[-1] in OPTIONAL:
                out[ours] = own[ours]
                continue
            raise BenchError(f"checkpoint {where} lacks {theirs!r} (for {ours!r}); it is not a "
                             f"checkpoint of {model.card.name}")
        if state[theirs].shape != own[ours].shape:
            raise BenchError(f"checkpoint {where}: {theirs!r} has shape {list(state[theirs].shape)}, "
                             f"{model.card.name} needs {list(own[ours].shape)}")
        out[ours] = state[theirs]
    extra = next((k for k in state if k not in set(names.values())), None)
    if extra is not None:
        raise BenchError(f"checkpoint {where} has {extra!r}, which {model.card.name} lacks "
                         "(another architecture or T?)")
    return {**{k: own[k] for k in KEEP if k in own}, **out}


def state_for(model: VGG, obj: object, where: str = "") -> dict[str, torch.Tensor]:
    """A loaded checkpoint (this project's state dict, or the reference format, detected) ->
    the state dict of ``model`` (a VGG), every weight checked (module docstring)."""
    state = unwrap(obj, where)
    if is_reference_format(state):
        names = reference_names(model)
    else:
        names = {k: k for k in model.state_dict() if k not in KEEP}
        state = {k: v for k, v in state.items() if k not in KEEP}
    return _pick(state, names, model, where)


def read_checkpoint(path: str | Path) -> object:
    """``torch.load`` of a user's checkpoint file, tensors and plain data only (``weights_only``)."""
    p = Path(path)
    if not p.is_file():
        raise BenchError(f"checkpoint {str(path)!r} not found")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure of a foreign file is the file's
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BenchError(f"checkpoint {str(path)!r} cannot be read as tensors and plain data "
                         f"({type(exc).__name__}: {first[:160]})") from None


def load_into(model: VGG, path: str | Path) -> None:
    """Load checkpoint file ``path`` (either format) into ``model`` (a VGG), strictly."""
    model.load_state_dict(state_for(model, read_checkpoint(path), repr(str(path))))
