"""Checks shared by the commands: every value the user gives is validated here, before a command
does any work or writes a file, and a bad one is a one-line :class:`BenchError`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from bench.errors import BenchError

#: figure formats every matplotlib backend install writes (``snnxai explain --out``)
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (what a ``mkdir -p`` would start from)."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out_dir(path: str | Path | None, flag: str = "--out") -> None:
    """``path`` can be (or become) a folder we may write into: not an existing file, no file
    among its ancestors, and the nearest existing folder is writable. None: nothing to check."""
    if path is None:
        return
    if str(path).strip() == "":
        raise BenchError(f"{flag} is empty: name a folder")
    _check_writable(Path(path), str(path), flag)


def _check_writable(folder: Path, shown: str, flag: str) -> None:
    p = folder.absolute()
    while not p.exists() and p != p.parent:  # a dangling symlink on the way: mkdir would say "File exists"
        if p.is_symlink():
            raise BenchError(f"{flag} {shown}: {p} is a symlink to {os.readlink(p)}, which does not exist; "
                             "remove the link or create its target")
        p = p.parent
    base = _first_existing(folder)
    if not base.is_dir():
        what = "is a file" if base == Path(shown).absolute() else f"lies under the file {base}"
        raise BenchError(f"{flag} {shown} {what}: name a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise BenchError(f"{flag} {shown}: cannot write into {base} (permission denied)")


def check_out_file(path: str | Path, flag: str = "--out", suffixes: tuple[str, ...] = ()) -> None:
    """``path`` can be written as a file: its folder can be created, it is not a folder, and (when
    ``suffixes`` is given) its extension is one of them."""
    p = Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise BenchError(f"{flag} {path}: unsupported file type {p.suffix or '(none)'!r}; "
                         f"use one of {', '.join(suffixes)}")
    if p.is_dir():
        raise BenchError(f"{flag} {path} is a folder: name a file")
    _check_writable(p.parent, str(path), flag)


def check_device(device: str, flag: str = "--device") -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` naming a device torch can see; returns it."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise BenchError(f"{flag} must be cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise BenchError(f"{flag} {device}: torch sees no CUDA device; use {flag} cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise BenchError(f"{flag} {device}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return device


def check_positive(value: int | None, flag: str) -> None:
    """An optional count (threads, batch size, samples) must be >= 1 when given."""
    if value is not None and value < 1:
        raise BenchError(f"{flag} must be >= 1, got {value}")
