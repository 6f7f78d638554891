"""bench.store: known-answer digests, the atomic writer, verified entries, checkpoint provenance."""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os

import numpy as np
import pytest
import torch
from torch import nn

import bench.store as store
from bench.errors import BenchError
from bench.models import build_model, get_card, load_model_with_provenance, zoo
from bench.models.build import data_config
from bench.models.cache import cache_path, load_checkpoint, save_checkpoint
from bench.models.load import _key
from bench.store import (
    ContentStore,
    DamagedEntry,
    bytes_digest,
    file_digest,
    read_entry,
    sidecar,
    state_digest,
    tensor_digest,
    write_atomic,
    write_entry,
)


# -- digests: known answers -----------------------------------------------------------------
def test_bytes_and_file_digests_are_plain_sha256(tmp_path) -> None:
    # FIPS 180-2 test vector for "abc"
    assert bytes_digest(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read blocks, the last one partial
    (tmp_path / "f").write_bytes(data)
    assert file_digest(tmp_path / "f") == hashlib.sha256(data).hexdigest() == bytes_digest(data)


def test_tensor_digest_hashes_dtype_shape_and_bytes() -> None:
    t = torch.tensor([[1, 2, 3]], dtype=torch.uint8)
    assert tensor_digest(t) == hashlib.sha256(b"torch.uint8|(1, 3)|\x01\x02\x03").hexdigest()
    # the heatmap cache keys of format 1 used this exact definition for one tensor
    assert tensor_digest(t) == "494a581ec89ddc73ffdada47e824454248d4d66ed6599c964723eb23359506f5"
    a = torch.arange(6, dtype=torch.float32)
    assert tensor_digest(a) == tensor_digest(a.clone())
    assert tensor_digest(a) != tensor_digest(a.view(2, 3)) != tensor_digest(a.double())
    assert tensor_digest(a[::2]) == tensor_digest(a[::2].contiguous())  # strides do not matter
    assert tensor_digest(a, a) == hashlib.sha256(2 * (b"torch.float32|(6,)|" + a.numpy().tobytes())).hexdigest()
    assert tensor_digest(torch.tensor(1.0)) != tensor_digest(torch.tensor([1.0]))
    assert tensor_digest(torch.zeros(1, dtype=torch.bfloat16)) != tensor_digest(torch.zeros(1, dtype=torch.float16))


def test_arrays_digest_hashes_names_dtypes_shapes_and_bytes() -> None:
    a = np.array([[1, 2, 3]], dtype=np.uint8)
    want = hashlib.sha256(b"a|<i2|(1,)|\x05\x00" + b"b|" + b"|u1|(1, 3)|\x01\x02\x03").hexdigest()
    assert store.arrays_digest({"b": a, "a": np.array([5], dtype="<i2")}) == want  # sorted by name
    assert store.arrays_digest({"b": a}) != store.arrays_digest({"c": a})
    assert store.arrays_digest({"b": a}) != store.arrays_digest({"b": a.reshape(3, 1)})
    assert store.arrays_digest({"b": np.asfortranarray(a.T)}) == store.arrays_digest({"b": a.T.copy()})


def test_note_is_one_line_on_stderr(capsys) -> None:
    store.note("damaged cache entry X (sha256 mismatch); recomputed")
    out = capsys.readouterr()
    assert out.out == "" and out.err == "note: damaged cache entry X (sha256 mismatch); recomputed\n"


def test_state_digest_is_the_recorded_run_json_hash() -> None:
    m = nn.Linear(3, 2)
    with torch.no_grad():
        m.weight.copy_(torch.arange(6.0).view(2, 3))
        m.bias.copy_(torch.tensor([-1.0, 0.5]))
    m.register_buffer("count", torch.tensor(7))
    # the value bench.provenance.sha256_state_dict gave before the store existed: run.json
    # records it for every model not loaded from the zoo, so it must never change
    assert state_digest(m) == "ae6066cd215085e54c0ab5d4e12e634f0ebab6e757c9a6612b105675f9c447b0"
    h = hashlib.sha256()
    for name, t in m.state_dict().items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode() + t.numpy().tobytes())
    assert state_digest(m) == h.hexdigest()


# -- the atomic writer ----------------------------------------------------------------------
class _FailingFile:
    """Wraps a file; writes half of the data, then fails like a full disk."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data: bytes) -> int:
        self.f.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")


def test_write_atomic_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "sub" / "results.csv"
    write_atomic(target, "old\n")
    assert target.read_text() == "old\n" and oct(target.stat().st_mode & 0o777) == "0o644"
    real_fdopen = os.fdopen
    monkeypatch.setattr(store.os, "fdopen", lambda fd, mode: _FailingFile(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new contents that never fully arrive")
    monkeypatch.setattr(store.os, "fdopen", real_fdopen)
    assert target.read_text() == "old\n"  # the old file, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.csv"]  # no temp file left
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"


def test_write_atomic_failing_rename_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "x.json"
    write_atomic(target, "1")

    def no_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(store.os, "replace", no_replace)
    with pytest.raises(OSError, match="rename failed"):
        write_atomic(target, "2")
    assert target.read_text() == "1" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


# -- entries and the content store ----------------------------------------------------------
def test_entry_round_trip_and_sidecar(tmp_path) -> None:
    s = ContentStore(tmp_path, ".bin")
    key = bytes_digest(b"key")
    assert s.read(key) is None and not s.exists(key)
    info = s.write(key, b"payload", {"note": "x"})
    assert s.path(key) == tmp_path / key[:2] / f"{key}.bin" and s.exists(key)
    assert info == {"note": "x", "sha256": hashlib.sha256(b"payload").hexdigest(), "bytes": 7}
    assert json.loads(sidecar(s.path(key)).read_text()) == info
    assert s.read(key) == (b"payload", info)
    assert ContentStore(tmp_path, ".pt", fanout=False).path("vgg5_ann") == tmp_path / "vgg5_ann.pt"


@pytest.mark.parametrize("damage", ["flip", "truncate", "no_sidecar", "bad_sidecar", "no_data"])
def test_damaged_entries_are_detected(tmp_path, damage) -> None:
    path = tmp_path / "e.pt"
    write_entry(path, bytes(range(200)))
    if damage == "flip":
        raw = bytearray(path.read_bytes())
        raw[100] ^= 1
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:150])
    elif damage == "no_sidecar":
        sidecar(path).unlink()
    elif damage == "bad_sidecar":
        sidecar(path).write_text("{not json")
    else:
        path.unlink()
    with pytest.raises(DamagedEntry):
        read_entry(path)
    with pytest.raises(DamagedEntry):
        store.verify_entry(path)


def test_damaged_checkpoint_is_refused(tmp_path) -> None:
    path = tmp_path / "m.pt"
    state = {"w": torch.arange(64, dtype=torch.float32)}
    info = save_checkpoint(state, path, {"name": "m"})
    assert info["sha256"] == file_digest(path) and info["bytes"] == path.stat().st_size
    loaded, meta = load_checkpoint(path)
    assert torch.equal(loaded["w"], state["w"]) and meta == info
    raw = bytearray(path.read_bytes())
    raw[raw.index(state["w"][10:12].numpy().tobytes())] ^= 0x40  # a weight changes, the zip still loads
    path.write_bytes(bytes(raw))
    with pytest.raises(BenchError, match="sha256 mismatch"):
        load_checkpoint(path)


# -- checkpoint provenance ------------------------------------------------------------------
def test_zoo_provenance_is_the_sidecar_and_file_sha256(tmp_path) -> None:
    model, prov = load_model_with_provenance("vgg5_ann", cache_dir=tmp_path, train_if_missing=False)
    path = zoo.zoo_path("vgg5_ann")
    on_disk = hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov.as_dict() == {"sha256": on_disk, "path": "bench/zoo/vgg5_ann.pt", "source": "zoo"}
    assert on_disk == json.loads(sidecar(path).read_text())["sha256"] and prov.file == path
    assert not model.training


def test_cache_provenance_is_the_state_digest(tmp_path) -> None:
    card = get_card("vgg5_ann")
    path = cache_path(card, _key(card, data_config(card), 1), tmp_path)
    weights = build_model(card, seed=3)
    save_checkpoint(weights.state_dict(), path, {"card": card})
    with pytest.warns(UserWarning, match="different card, data or seed"):  # the zoo holds seed 0
        model, prov = load_model_with_provenance("vgg5_ann", seed=1, cache_dir=tmp_path, train_if_missing=False)
    assert prov.as_dict() == {"sha256": state_digest(weights), "path": None, "source": "state_dict"}
    assert prov.file == path and state_digest(model) == prov.sha256


def test_zoo_module_does_not_import_the_loader() -> None:
    # the zoo only reads and writes files; the loader uses it (no import cycle)
    tree = ast.parse(inspect.getsource(zoo))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "bench.models.cache" in imported and not {"bench.models", "bench.models.load"} & imported
