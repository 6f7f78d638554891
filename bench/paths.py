"""Where the project keeps its caches, without importing torch (``snnxai ls`` must stay fast).

One rule for every cache of the project -- checkpoints (:mod:`bench.models.cache`), heat maps,
registry listings (:mod:`bench.listing`): the caller's folder, else ``$SNNXAI_CACHE``, else
``~/.cache/snnxai``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the environment variable that moves every cache of the project
CACHE_ENV = "SNNXAI_CACHE"


def cache_dir(override: str | Path | None = None) -> Path:
    """The cache root: ``override`` (the suite's ``run.cache_dir``, ``--cache-dir``) if given,
    else ``$SNNXAI_CACHE``, else ``~/.cache/snnxai``; ``~`` is expanded."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snnxai"
