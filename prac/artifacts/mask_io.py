"""The mask file: one Parquet row per prunable tensor, the boolean mask bit-packed.

Columns: layer (string), shape (list<int64>), numel (int64), kept (int64),
bits (binary: numpy.packbits of the flattened mask, bitorder="big").
Metadata: fingerprint, round, sparsity (repr of 1 - total kept / total numel),
sha256 (hex digest of every row's bits concatenated in row order).
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from prac.artifacts._parquet import check_fingerprint, check_schema, parse_round, read_table, write_table
from prac.errors import ArtifactError
from prac.hardware.placement import to_numpy

_WHAT = "mask file"
COLUMNS = {
    "layer": pa.string(),
    "shape": pa.list_(pa.int64()),
    "numel": pa.int64(),
    "kept": pa.int64(),
    "bits": pa.binary(),
}
METADATA_KEYS = ("fingerprint", "round", "sparsity", "sha256")


@dataclass(frozen=True, eq=False)
class MaskFile:
    """A verified mask file: bool CPU tensors in their original shapes, in row order."""

    mask: dict[str, torch.Tensor]
    fingerprint: str
    round: int
    sparsity: float
    sha256: str


def _sparsity(kept: int, numel: int) -> float:
    return 1.0 - kept / numel


def write_mask(path: str | os.PathLike[str], mask: dict[str, torch.Tensor], *, fingerprint: str, round: int) -> str:
    """Write `mask` (bool tensors, any shape/device; row order = dict order) atomically; return its sha256."""
    if not mask:
        raise ValueError("write_mask: the mask has no tensors")
    layers, shapes, numels, kepts, bits = [], [], [], [], []
    for name, tensor in mask.items():
        if tensor.dtype != torch.bool:
            raise ValueError(f"write_mask: mask for {name!r} has dtype {tensor.dtype}, expected torch.bool")
        flat = to_numpy(tensor).reshape(-1)
        layers.append(name)
        shapes.append(list(tensor.shape))
        numels.append(flat.size)
        kepts.append(int(np.count_nonzero(flat)))
        bits.append(np.packbits(flat, bitorder="big").tobytes())
    total = sum(numels)
    if total == 0:
        raise ValueError("write_mask: the mask has no elements")
    sha256 = hashlib.sha256(b"".join(bits)).hexdigest()
    table = pa.table(
        [pa.array(layers), pa.array(shapes), pa.array(numels), pa.array(kepts), pa.array(bits)],
        schema=pa.schema([pa.field(name, dtype, nullable=False) for name, dtype in COLUMNS.items()]),
    )
    metadata = {
        "fingerprint": fingerprint,
        "round": str(int(round)),
        "sparsity": repr(_sparsity(sum(kepts), total)),
        "sha256": sha256,
    }
    write_table(path, table, metadata)
    return sha256


def read_mask(path: str | os.PathLike[str], *, expected_fingerprint: str | None = None) -> MaskFile:
    """Read and verify a mask file; any inconsistency is an ArtifactError naming the file."""
    path, table, meta = read_table(path, _WHAT)
    check_schema(path, _WHAT, table, meta, COLUMNS, METADATA_KEYS)
    layers = table.column("layer").to_pylist()
    shapes = table.column("shape").to_pylist()
    numels = table.column("numel").to_pylist()
    kepts = table.column("kept").to_pylist()
    bits = table.column("bits").to_pylist()

    def fail(message: str) -> ArtifactError:
        return ArtifactError(f"{_WHAT} {path}: {message}")

    if not layers:
        raise fail("has no rows")
    if len(set(layers)) != len(layers):
        raise fail("duplicate layer names")
    if hashlib.sha256(b"".join(bits)).hexdigest() != meta["sha256"]:
        raise fail("sha256 of the bits does not match the metadata (file corrupted or edited)")

    mask: dict[str, torch.Tensor] = {}
    for layer, shape, numel, kept, packed in zip(layers, shapes, numels, kepts, bits):
        if any(dim < 0 for dim in shape) or numel != math.prod(shape):
            raise fail(f"layer {layer!r}: numel {numel} does not match shape {shape}")
        if len(packed) != (numel + 7) // 8:
            raise fail(f"layer {layer!r}: {len(packed)} bytes of bits, expected {(numel + 7) // 8} for numel {numel}")
        unpacked = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), bitorder="big")
        # packbits pads with zeros; a set padding bit means the bytes did not come from packbits.
        if unpacked[numel:].any():
            raise fail(f"layer {layer!r}: padding bits after the last element are not zero")
        flat = unpacked[:numel].astype(bool)
        if int(np.count_nonzero(flat)) != kept:
            raise fail(f"layer {layer!r}: kept {kept} does not match the {int(np.count_nonzero(flat))} set bits")
        mask[layer] = torch.from_numpy(flat.reshape(shape))

    try:
        sparsity = float(meta["sparsity"])
    except ValueError:
        raise fail(f"metadata sparsity {meta['sparsity']!r} is not a number") from None
    total = sum(numels)
    if total == 0:
        raise fail("has no elements")
    actual = _sparsity(sum(kepts), total)
    if not math.isclose(sparsity, actual, rel_tol=0.0, abs_tol=1e-12):
        raise fail(f"metadata sparsity {sparsity!r} does not match the mask's {actual!r}")
    round_ = parse_round(path, _WHAT, meta)
    check_fingerprint(path, _WHAT, meta["fingerprint"], expected_fingerprint)
    return MaskFile(mask=mask, fingerprint=meta["fingerprint"], round=round_, sparsity=sparsity, sha256=meta["sha256"])
