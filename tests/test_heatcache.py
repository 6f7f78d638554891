"""Heatmap cache: content keys, atomic round trips, damaged entries are misses and get rewritten."""

from __future__ import annotations

import torch
from torch import nn

from bench.store import state_digest, tensor_digest
from bench.store.heatcache import HeatmapCache


def test_round_trip_and_counters(tmp_path) -> None:
    cache = HeatmapCache(tmp_path)
    key = cache.key({"model": "abc", "method": "sam", "sample_id": 3})
    assert cache.get(key) is None and cache.misses == 1
    value = torch.rand(4, 5, 5)
    cache.put(key, value)
    got = cache.get(key)
    assert torch.equal(got, value) and cache.hits == 1
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary file left behind


def test_keys_depend_on_every_part() -> None:
    base = {"model": "m", "method": "sam", "params": {"gamma": 0.5}, "sample_id": 1, "seed": 0}
    keys = {HeatmapCache.key(base)}
    for k, v in [("model", "m2"), ("params", {"gamma": 0.6}), ("sample_id", 2), ("seed", 1)]:
        keys.add(HeatmapCache.key({**base, k: v}))
    assert len(keys) == 5
    assert HeatmapCache.key(dict(reversed(list(base.items())))) == HeatmapCache.key(base)


def test_corrupt_file_is_a_miss(tmp_path) -> None:
    cache = HeatmapCache(tmp_path)
    key = cache.key({"x": 1})
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(b"not a tensor")  # no sidecar: an interrupted or foreign write
    assert cache.get(key) is None and cache.damaged == 1
    cache.put(key, torch.ones(2))
    assert torch.equal(cache.get(key), torch.ones(2))


def test_a_flipped_byte_is_detected_not_used(tmp_path, capsys) -> None:
    cache = HeatmapCache(tmp_path)
    key = cache.key({"x": 2})
    cache.put(key, torch.zeros(16))
    raw = bytearray(cache.path(key).read_bytes())
    i = raw.index(bytes(64))  # inside the tensor's zero bytes: torch.load would accept the change
    raw[i] = 0x3F
    cache.path(key).write_bytes(bytes(raw))
    assert cache.get(key) is None and (cache.hits, cache.misses, cache.damaged) == (0, 1, 1)
    assert capsys.readouterr().err == (f"note: damaged cache entry: {cache.path(key)} is corrupted or "
                                       "was modified (sha256 mismatch); recomputed\n")  # told once, by name
    cache.put(key, torch.zeros(16))  # the caller recomputes and rewrites it
    assert torch.equal(cache.get(key), torch.zeros(16)) and cache.hits == 1


def test_digests() -> None:
    a = torch.arange(6, dtype=torch.float32)
    assert tensor_digest(a) == tensor_digest(a.clone())
    assert tensor_digest(a) != tensor_digest(a.view(2, 3))
    assert tensor_digest(a) != tensor_digest(a.double())
    m1, m2 = nn.Linear(3, 2), nn.Linear(3, 2)
    assert state_digest(m1) != state_digest(m2)
    m2.load_state_dict(m1.state_dict())
    assert state_digest(m1) == state_digest(m2)
