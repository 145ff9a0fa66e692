"""Artifact files: round trips, byte-for-byte determinism, and one-line errors for every kind of damage."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from prac.artifacts import (
    PracSet,
    atomic_write,
    load_torch,
    read_mask,
    read_prac_set,
    save_torch,
    write_mask,
    write_prac_set,
)
from prac.errors import ArtifactError, UserError


def _mask() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "conv1.weight": torch.rand(4, 3, 3, 3, generator=gen) > 0.5,  # 108 elements
        "layer1.0.conv.weight": torch.rand(5, 7, generator=gen) > 0.3,  # 35: not a multiple of 8
        "fc.zero": torch.zeros(3, 3, dtype=torch.bool),
        "fc.one": torch.ones(13, dtype=torch.bool),
    }


def _prac_set(n: int = 50) -> PracSet:
    rng = np.random.default_rng(0)
    in_cet = rng.random(n) < 0.3
    in_cep = rng.random(n) < 0.2
    return PracSet(
        index=rng.permutation(1000)[:n].astype(np.int64),
        label=rng.integers(0, 10, n).astype(np.int64),
        trained=rng.random(n) < 0.8,
        forget_events=rng.integers(-1, 5, n).astype(np.int32),
        in_cet=in_cet,
        in_cep=in_cep,
        in_prac=in_cet | in_cep,
    )


def _assert_one_line_error(excinfo: pytest.ExceptionInfo, path: Path) -> None:
    message = str(excinfo.value)
    assert str(path) in message
    assert "\n" not in message
    assert isinstance(excinfo.value, UserError)


def _rewrite_with_old_metadata(path: Path, column: str, values: pa.Array) -> None:
    """Replace one column but keep the stored metadata, as a silent edit or bit rot would."""
    table = pq.read_table(path)
    i = table.column_names.index(column)
    table = table.set_column(i, table.schema.field(i), values).replace_schema_metadata(table.schema.metadata)
    pq.write_table(table, path)


# ---------------------------------------------------------------- masks


def test_mask_round_trip(tmp_path: Path) -> None:
    mask = _mask()
    path = tmp_path / "r1" / "mask.parquet"
    sha = write_mask(path, mask, fingerprint="fp-1", round=3)
    got = read_mask(path, expected_fingerprint="fp-1")
    assert list(got.mask) == list(mask)
    for name, tensor in mask.items():
        assert got.mask[name].dtype == torch.bool
        assert got.mask[name].device.type == "cpu"
        assert torch.equal(got.mask[name], tensor)
    assert (got.fingerprint, got.round, got.sha256) == ("fp-1", 3, sha)
    kept = sum(int(t.sum()) for t in mask.values())
    numel = sum(t.numel() for t in mask.values())
    assert got.sparsity == pytest.approx(1 - kept / numel, abs=1e-15)


def test_mask_bits_decode_independently(tmp_path: Path) -> None:
    mask = _mask()
    path = tmp_path / "mask.parquet"
    write_mask(path, mask, fingerprint="fp", round=0)
    table = pq.read_table(path)
    assert table.column("layer").to_pylist() == list(mask)
    meta = table.schema.metadata
    assert set(meta) >= {b"fingerprint", b"round", b"sparsity", b"sha256"}
    for row, (name, tensor) in zip(table.to_pylist(), mask.items()):
        flat = tensor.reshape(-1).numpy()
        bits = np.unpackbits(np.frombuffer(row["bits"], dtype=np.uint8), bitorder="big")[: flat.size]
        assert np.array_equal(bits.astype(bool), flat)
        assert row["shape"] == list(tensor.shape)
        assert row["numel"] == tensor.numel()
        assert row["kept"] == int(tensor.sum())


def test_mask_written_twice_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "mask.parquet", tmp_path / "b" / "mask.parquet"
    write_mask(a, _mask(), fingerprint="fp", round=1)
    write_mask(b, _mask(), fingerprint="fp", round=1)
    assert a.read_bytes() == b.read_bytes()


def test_mask_rejects_non_bool(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_mask(tmp_path / "mask.parquet", {"w": torch.ones(3)}, fingerprint="fp", round=0)


def test_mask_truncated(tmp_path: Path) -> None:
    path = tmp_path / "mask.parquet"
    write_mask(path, _mask(), fingerprint="fp", round=0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError) as excinfo:
        read_mask(path)
    _assert_one_line_error(excinfo, path)


def test_mask_garbage(tmp_path: Path) -> None:
    path = tmp_path / "mask.parquet"
    path.write_bytes(b"not parquet\nat all\n" * 10)
    with pytest.raises(ArtifactError) as excinfo:
        read_mask(path)
    _assert_one_line_error(excinfo, path)


def test_mask_altered_bits_detected(tmp_path: Path) -> None:
    path = tmp_path / "mask.parquet"
    write_mask(path, _mask(), fingerprint="fp", round=0)
    bits = pq.read_table(path).column("bits").to_pylist()
    bits[1] = bytes([bits[1][0] ^ 0x01]) + bits[1][1:]
    _rewrite_with_old_metadata(path, "bits", pa.array(bits, type=pa.binary()))
    with pytest.raises(ArtifactError, match="sha256") as excinfo:
        read_mask(path)
    _assert_one_line_error(excinfo, path)


def test_mask_wrong_kept_detected(tmp_path: Path) -> None:
    path = tmp_path / "mask.parquet"
    write_mask(path, _mask(), fingerprint="fp", round=0)
    kept = pq.read_table(path).column("kept").to_pylist()
    kept[0] += 1
    _rewrite_with_old_metadata(path, "kept", pa.array(kept, type=pa.int64()))
    with pytest.raises(ArtifactError, match="kept") as excinfo:
        read_mask(path)
    _assert_one_line_error(excinfo, path)


def test_mask_wrong_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "mask.parquet"
    write_mask(path, _mask(), fingerprint="fp-a", round=0)
    with pytest.raises(ArtifactError, match="fingerprint") as excinfo:
        read_mask(path, expected_fingerprint="fp-b")
    _assert_one_line_error(excinfo, path)


def test_mask_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "mask.parquet"
    with pytest.raises(ArtifactError) as excinfo:
        read_mask(path)
    _assert_one_line_error(excinfo, path)


def test_mask_missing_metadata(tmp_path: Path) -> None:
    path = tmp_path / "mask.parquet"
    write_mask(path, _mask(), fingerprint="fp", round=0)
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    del meta[b"sha256"]
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(ArtifactError, match="sha256") as excinfo:
        read_mask(path)
    _assert_one_line_error(excinfo, path)


# ---------------------------------------------------------------- PrAC sets


def test_prac_set_round_trip(tmp_path: Path) -> None:
    prac = _prac_set()
    path = tmp_path / "r2" / "prac_set.parquet"
    sha = write_prac_set(path, prac, fingerprint="fp-2", round=2)
    got = read_prac_set(path, expected_fingerprint="fp-2")
    assert (got.fingerprint, got.round, got.sha256) == ("fp-2", 2, sha)
    for name in ("index", "label", "trained", "forget_events", "in_cet", "in_cep", "in_prac"):
        a, b = getattr(got.prac_set, name), getattr(prac, name)
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)
    assert np.array_equal(got.prac_set.prac_indices, np.sort(prac.index[prac.in_prac]))
    assert got.prac_set.prac_indices.dtype == np.int64
    meta = pq.read_table(path).schema.metadata
    assert meta[b"prac_size"] == str(int(prac.in_prac.sum())).encode()


def test_prac_set_may_differ_from_cet_or_cep(tmp_path: Path) -> None:
    prac = _prac_set()
    transferred = PracSet(**{**prac.__dict__, "in_prac": ~prac.in_prac})
    path = tmp_path / "prac_set.parquet"
    write_prac_set(path, transferred, fingerprint="fp", round=0)
    assert np.array_equal(read_prac_set(path).prac_set.in_prac, ~prac.in_prac)


def test_prac_set_validate() -> None:
    prac = _prac_set()
    with pytest.raises(ValueError, match="duplicate"):
        PracSet(**{**prac.__dict__, "index": np.zeros(len(prac.index), dtype=np.int64)}).validate()
    with pytest.raises(ValueError, match="dtype"):
        PracSet(**{**prac.__dict__, "forget_events": prac.forget_events.astype(np.int64)}).validate()
    with pytest.raises(ValueError, match="length"):
        PracSet(**{**prac.__dict__, "label": prac.label[:-1]}).validate()


def test_prac_set_written_twice_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_prac_set(a, _prac_set(), fingerprint="fp", round=1)
    write_prac_set(b, _prac_set(), fingerprint="fp", round=1)
    assert a.read_bytes() == b.read_bytes()


def test_prac_set_truncated_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "prac_set.parquet"
    write_prac_set(path, _prac_set(), fingerprint="fp", round=0)
    data = path.read_bytes()
    path.write_bytes(data[:-20])
    with pytest.raises(ArtifactError) as excinfo:
        read_prac_set(path)
    _assert_one_line_error(excinfo, path)
    path.write_bytes(os.urandom(500))
    with pytest.raises(ArtifactError) as excinfo:
        read_prac_set(path)
    _assert_one_line_error(excinfo, path)


def test_prac_set_altered_data_detected(tmp_path: Path) -> None:
    path = tmp_path / "prac_set.parquet"
    prac = _prac_set()
    write_prac_set(path, prac, fingerprint="fp", round=0)
    label = prac.label.copy()
    label[7] = (label[7] + 1) % 10
    _rewrite_with_old_metadata(path, "label", pa.array(label, type=pa.int64()))
    with pytest.raises(ArtifactError, match="sha256") as excinfo:
        read_prac_set(path)
    _assert_one_line_error(excinfo, path)


def test_prac_set_wrong_fingerprint_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "prac_set.parquet"
    write_prac_set(path, _prac_set(), fingerprint="fp-a", round=0)
    with pytest.raises(ArtifactError, match="fingerprint") as excinfo:
        read_prac_set(path, expected_fingerprint="fp-b")
    _assert_one_line_error(excinfo, path)
    missing = tmp_path / "missing.parquet"
    with pytest.raises(ArtifactError) as excinfo:
        read_prac_set(missing)
    _assert_one_line_error(excinfo, missing)


def test_prac_set_wrong_column_type(tmp_path: Path) -> None:
    path = tmp_path / "prac_set.parquet"
    prac = _prac_set()
    write_prac_set(path, prac, fingerprint="fp", round=0)
    table = pq.read_table(path)
    i = table.column_names.index("forget_events")
    table = table.set_column(i, "forget_events", pa.array(prac.forget_events.astype(np.int64)))
    pq.write_table(table.replace_schema_metadata(pq.read_table(path).schema.metadata), path)
    with pytest.raises(ArtifactError, match="forget_events") as excinfo:
        read_prac_set(path)
    _assert_one_line_error(excinfo, path)


# ---------------------------------------------------------------- atomic writes and checkpoints


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as tmp:
            assert tmp.parent == path.parent and tmp != path
            tmp.write_text("half-writ")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_atomic_write_replaces_and_creates_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "file.txt"
    with atomic_write(path) as tmp:
        tmp.write_text("new")
        assert not path.exists()  # invisible until the body finishes
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["file.txt"]


def test_torch_round_trip(tmp_path: Path) -> None:
    obj = {"state": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 4}
    path = tmp_path / "ckpt" / "model.pt"
    save_torch(path, obj)
    got = load_torch(path)
    assert got["epoch"] == 4
    assert torch.equal(got["state"]["w"], obj["state"]["w"])
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]


def test_torch_corrupt_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_torch(path, {"w": torch.ones(100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError) as excinfo:
        load_torch(path)
    _assert_one_line_error(excinfo, path)
    missing = tmp_path / "missing.pt"
    with pytest.raises(ArtifactError) as excinfo:
        load_torch(missing)
    _assert_one_line_error(excinfo, missing)
