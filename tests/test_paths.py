"""bench.paths: the one cache-folder rule, shared by the checkpoint cache and the torch-free
registry listings (``snnxai ls`` must not import torch to find its cache)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.paths import cache_dir

ROOT = Path(__file__).resolve().parents[1]


def test_cache_dir_prefers_the_argument_then_the_environment_then_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SNNXAI_CACHE", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "snnxai"
    monkeypatch.setenv("SNNXAI_CACHE", "~/elsewhere")
    assert cache_dir() == tmp_path / "home" / "elsewhere"
    assert cache_dir("~/mine") == tmp_path / "home" / "mine" and cache_dir(tmp_path) == tmp_path
    assert cache_dir("") == tmp_path / "home" / "elsewhere"        # "" = not given (run.cache_dir = "")


def test_the_checkpoint_cache_and_the_listings_use_it_and_listing_stays_torch_free():
    import bench.listing
    import bench.models.cache

    assert bench.models.cache.cache_dir is cache_dir and bench.listing.cache_dir is cache_dir
    code = "import sys, bench.listing; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
