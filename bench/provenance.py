"""Provenance for run.json: git state, package versions, device, the plugins a run uses.

Checkpoint hashes come with the model: :func:`bench.models.load.load_model_with_provenance`.

Everything here is best-effort and never raises: a run outside a git checkout records
``commit: null`` rather than failing.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

#: distributions whose versions can change a number in results.csv
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "pandas", "captum", "scikit-learn",
            "matplotlib", "seaborn", "snn-xai-bench")

REPO_ROOT = Path(__file__).resolve().parent.parent


#: For runs from a copied working tree whose ``.git`` is missing or stale (a remote GPU machine
#: gets a copy of the files): the commit the files were copied from, declared by the sender.
SOURCE_COMMIT_ENV = "SNNXAI_SOURCE_COMMIT"


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout holding the code.

    With ``$SNNXAI_SOURCE_COMMIT`` set, that commit is recorded instead (``dirty`` None: the
    sender vouches for a clean tree) with ``"declared": True``, and what the local ``.git``
    says is kept as ``checkout_commit``."""
    declared = os.environ.get(SOURCE_COMMIT_ENV, "").strip()
    if declared:
        return {"commit": declared, "dirty": None, "declared": True,
                "checkout_commit": _git_state(root)["commit"]}
    return _git_state(root)


def _git_state(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                 timeout=10, check=True)
            return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    # Only tracked files count: untracked run outputs must not mark the code dirty.
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None if absent), plus Python's."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = None
    return out


def device_info(device: str) -> dict[str, Any]:
    """What ran the numbers: the requested device, CPU threads, and the GPU name if any."""
    info: dict[str, Any] = {"device": device, "platform": platform.platform(),
                            "torch_threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def plugin_record(uses: dict[str, list[str]]) -> dict[str, dict[str, dict[str, str | None]]]:
    """For each name the run uses (``{"methods": [...], "metrics": [...], "models": [...],
    "datasets": [...]}``, keys of :data:`bench.registry.REGISTRIES`) that an entry-point plugin
    registered: ``{registry: {name: {"distribution": ..., "version": ...}}}``, only registries
    with one (empty: the run uses no plugin). Recorded in run.json, never hashed: a plugin's
    own ``version`` field, in its spec, is what names its numbers (:mod:`bench.plugins`)."""
    from bench.plugins import loaded_version
    from bench.registry import BUILTIN_SOURCE, REGISTRIES

    out: dict[str, dict[str, dict[str, str | None]]] = {}
    for kind, names in uses.items():
        for name in names:
            source = REGISTRIES[kind].get(name).source
            if source != BUILTIN_SOURCE:
                out.setdefault(kind, {})[name] = {"distribution": source, "version": loaded_version(source)}
    return out
