"""One store: digests, atomic writes, sidecars, and the content-addressed file store on top.

Everything the benchmark writes to disk or identifies by content goes through here:

* digests (all sha256, hex): :func:`bytes_digest` (bytes), :func:`file_digest` (a file's bytes),
  :func:`tensor_digest` (tensors: dtype, shape and raw bytes) and :func:`state_digest` (a
  module's state dict: names, dtypes, shapes and raw bytes, in order -- the weights' identity
  that ``run.json`` records for models not loaded from the zoo);
* :func:`write_atomic`: a temporary file in the same folder, then ``os.replace``, so a reader
  (or a resumed run) sees the old file or the complete new one, never a part;
* entries: a data file plus a ``.json`` sidecar holding the caller's metadata and the data's
  ``sha256`` and ``bytes``. The data is written first and the sidecar last, so a sidecar marks
  a complete entry; reading checks the data against the sidecar (:class:`DamagedEntry` if it
  does not match), so a damaged file is never used silently;
* :class:`ContentStore`: entries addressed by key under one folder. The heatmap cache
  (:mod:`bench.store.heatcache`), the checkpoint cache and the shipped zoo (:mod:`bench.models.cache`)
  are instances of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.errors import BenchError

#: Read files in blocks of this many bytes when hashing them.
_BLOCK = 1 << 20


# -- digests --------------------------------------------------------------------------------
def bytes_digest(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in blocks: checkpoints need not fit in memory twice)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _feed(h: hashlib._Hash, t: torch.Tensor, label: str = "") -> None:
    """Add ``label``, a tensor's dtype and shape, then its raw bytes (CPU, contiguous) to ``h``."""
    t = t.detach().cpu().contiguous()
    h.update(f"{label}{t.dtype}|{tuple(t.shape)}|".encode())
    flat = t.reshape(-1)  # 0-d tensors cannot be viewed as bytes; uint8 view also covers bfloat16
    h.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")


def tensor_digest(*tensors: torch.Tensor) -> str:
    """Hex sha256 of tensors of any shape: each one's dtype, shape and bytes, in order."""
    h = hashlib.sha256()
    for t in tensors:
        _feed(h, t)
    return h.hexdigest()


def state_digest(module: nn.Module) -> str:
    """Hex sha256 over ``module.state_dict()``: each entry's name, dtype, shape and bytes, in the
    state dict's order. Recorded in ``run.json`` as the checkpoint sha256 of a model that was
    not loaded from the zoo, so its definition must stay fixed."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        _feed(h, t, f"{name}|")
    return h.hexdigest()


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """Hex sha256 over named arrays of any shape, in sorted name order: each one's name, dtype,
    shape and raw bytes (C order). The content identity of an ``.npz`` file (gallery examples,
    attacked inputs), equal for equal arrays whatever the zip container's timestamps."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def note(msg: str) -> None:
    """Print ``note: msg`` as one line on stderr, above any progress bar (never glued to one).
    For a damaged file that was detected and recomputed: worth telling, not an error."""
    from tqdm.auto import tqdm

    tqdm.write(f"note: {msg}", file=sys.stderr)


# -- names that become file names ----------------------------------------------------------
def unsafe_name(name: object) -> str | None:
    """Why ``name`` cannot be one path component (a file or folder name) under a folder we
    write into, or None when it can. A model, method or variant name becomes such a component
    (``cells/<model>/<method>.csv``, a cache entry), so a name that is empty, ``.``/``..``,
    hidden (``.x``: would hide a run's files, and ``..`` is its first case), or holds a path
    separator, a NUL or a control character could land a file outside its folder, or nowhere."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if name.startswith("."):
        return "it starts with '.'"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if any(ord(ch) < 32 or ch == "\x7f" for ch in name):
        return "it holds a control character"
    if len(name.encode()) > 200:  # leaves room for the suffixes and temporary-file prefixes
        return "it is longer than 200 bytes"
    return None


def check_name(name: object, what: str) -> str:
    """``name`` if it is a safe path component (:func:`unsafe_name`), else a one-line BenchError
    naming ``what`` (e.g. ``model name``) and why."""
    why = unsafe_name(name)
    if why:
        raise BenchError(f"{what} {name!r} cannot name a file ({why}); use letters, digits, '_', '-', '@', '=' or '.'")
    return str(name)


# -- atomic writes and sidecars -------------------------------------------------------------
def _umask() -> int:
    """The process umask (os.umask can only be read by setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (str: UTF-8) to ``path`` through a temporary file in the same folder and
    a rename; on any error the temporary file is removed and ``path`` is left as it was."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the mode open() would give
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # ENOSPC from write() names no file: say which one failed
            raise OSError(exc.errno, exc.strerror or str(exc), str(p)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sidecar(path: str | Path) -> Path:
    """The sidecar of data file ``path``: the same name with a ``.json`` suffix."""
    return Path(path).with_suffix(".json")


class DamagedEntry(BenchError):
    """A store entry whose sidecar is missing or unreadable, or whose data does not match the
    sha256 its sidecar records."""


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar dict of data file ``path`` (:class:`DamagedEntry` if missing or unreadable)."""
    side = sidecar(path)
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise DamagedEntry(f"{path} has no readable sidecar {side.name} ({exc})") from None
    if not isinstance(meta, dict):
        raise DamagedEntry(f"{path} has a sidecar {side.name} that is not a JSON object")
    return meta


def write_entry(path: str | Path, data: bytes, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``data`` to ``path``, then its sidecar ``{**meta, "sha256", "bytes"}`` (JSON, keys
    sorted, indent 2); returns the sidecar dict. ``meta`` must be plain JSON data."""
    info = {**(meta or {}), "sha256": bytes_digest(data), "bytes": len(data)}
    write_atomic(path, data)
    write_atomic(sidecar(path), json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def verify_entry(path: str | Path) -> dict[str, Any]:
    """The sidecar of entry ``path`` after checking the data file's sha256 against it
    (:class:`DamagedEntry` on a mismatch or a missing data file)."""
    meta = read_sidecar(path)
    try:
        actual = file_digest(path)
    except OSError as exc:
        raise DamagedEntry(f"{path} cannot be read ({exc})") from None
    if actual != meta.get("sha256"):
        raise DamagedEntry(f"{path} is corrupted or was modified (sha256 mismatch)")
    return meta


def read_entry(path: str | Path) -> tuple[bytes, dict[str, Any]]:
    """``(data, sidecar)`` of entry ``path``, the data checked against the sidecar's sha256
    (:class:`DamagedEntry` otherwise). The bytes are hashed as read, so what is returned is
    exactly what was verified."""
    meta = read_sidecar(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DamagedEntry(f"{path} cannot be read ({exc})") from None
    if bytes_digest(data) != meta.get("sha256"):
        raise DamagedEntry(f"{path} is corrupted or was modified (sha256 mismatch)")
    return data, meta


# -- the content-addressed store ------------------------------------------------------------
class ContentStore:
    """Entries (data file + sidecar, see :func:`write_entry`) addressed by key under ``root``.

    With ``fanout`` an entry lives at ``root/<key[:2]>/<key><suffix>`` (hex content keys: keeps
    folders small), else at ``root/<key><suffix>`` (readable keys such as a model name).
    """

    #: a store of what can be recomputed (the heatmap cache): a write the disk refuses (full,
    #: read-only) is one warning and the run goes on uncached, instead of aborting it
    optional: bool = False

    def __init__(self, root: str | Path, suffix: str = ".pt", fanout: bool = True):
        self.root = Path(root)
        self.suffix = suffix
        self.fanout = fanout
        self._write_failed = False

    def path(self, key: str) -> Path:
        """The data file of ``key`` (its sidecar: :func:`sidecar` of it). A key that is not one
        safe file name (a model name from a hostile suite) is refused, never followed."""
        check_name(key, "store key")
        return (self.root / key[:2] if self.fanout else self.root) / f"{key}{self.suffix}"

    def exists(self, key: str) -> bool:
        """Whether ``key`` was completely written (data and sidecar present; not yet verified)."""
        p = self.path(key)
        return p.is_file() and sidecar(p).is_file()

    def write(self, key: str, data: bytes, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Store ``data`` under ``key``; returns the sidecar dict ({} when an :attr:`optional`
        store could not write it)."""
        if self.optional and self._write_failed:
            return {}
        try:
            return write_entry(self.path(key), data, meta)
        except OSError as exc:
            if not self.optional:
                raise
            import warnings

            self._write_failed = True  # told once; later entries are not tried
            warnings.warn(f"cache {self.root} cannot be written ({exc.strerror or exc}): running uncached",
                          UserWarning, stacklevel=2)
            return {}

    def read(self, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """``(data, sidecar)`` of ``key``, verified; None if absent; :class:`DamagedEntry` if damaged."""
        p = self.path(key)
        if not p.exists() and not sidecar(p).exists():
            return None
        return read_entry(p)
