"""Load a user's model: ``file.py:function`` -> ``nn.Module``, then its checkpoint.

The file is imported under a private module name (it never shadows an installed package and
two files with the same stem do not collide); the function is called without arguments and
must return an ``nn.Module``. Every failure is a one-line :class:`BenchError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import torch
from torch import nn

from bench.errors import BenchError


def build_user_module(source: str) -> nn.Module:
    """``"path/to/my_net.py:build"`` -> the module ``build()`` returns (in train mode as built)."""
    file, _, fn = source.rpartition(":")
    path = Path(file)
    if not path.is_file():
        raise BenchError(f"model source {file!r} not found (expected 'path/to/file.py:function')")
    name = "snnxai_user_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot import {file!r} as Python")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # the user's file: any error is theirs, reported in one line
        sys.modules.pop(name, None)
        raise BenchError(f"importing {file!r} failed: {type(exc).__name__}: {exc}") from None
    builder = getattr(mod, fn, None)
    if not callable(builder):
        known = sorted(k for k, v in vars(mod).items() if callable(v) and not k.startswith("_")
                       and getattr(v, "__module__", None) == name)
        raise BenchError(f"{file!r} has no function {fn!r} (functions: {', '.join(known) or 'none'})")
    try:
        with torch.random.fork_rng(devices=[]):  # a builder that seeds torch leaves the run's RNG alone
            model = builder()
    except Exception as exc:
        raise BenchError(f"{source}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise BenchError(f"{source}() must return a torch.nn.Module, got {type(model).__name__}")
    return model


def load_checkpoint_into(model: nn.Module, checkpoint: str) -> None:
    """Load a state dict file (``{"state_dict": ...}`` / ``{"model": ...}`` wrappers accepted)
    into ``model``, strictly: a missing or unexpected key, or a shape mismatch, is an error."""
    path = Path(checkpoint)
    if not path.is_file():
        raise BenchError(f"checkpoint {checkpoint!r} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BenchError(f"checkpoint {checkpoint!r} is not a torch state dict: {type(exc).__name__}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise BenchError(f"checkpoint {checkpoint!r} holds a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise BenchError(f"checkpoint {checkpoint!r} does not fit the model: {detail}") from None
