"""The PrAC-set file: one Parquet row per sample of the training split D0.

Columns: index (int64, position in the train set), label (int64), trained (bool: in this
round's training set D), forget_events (int32, -1 if never learned), in_cet, in_cep, in_prac (bool).
Metadata: fingerprint, round, prac_size (number of in_prac rows), sha256 (see `prac_set_sha256`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from prac.artifacts._parquet import check_fingerprint, check_schema, parse_round, read_table, write_table
from prac.errors import ArtifactError

_WHAT = "PrAC-set file"
DTYPES: dict[str, np.dtype] = {
    "index": np.dtype(np.int64),
    "label": np.dtype(np.int64),
    "trained": np.dtype(np.bool_),
    "forget_events": np.dtype(np.int32),
    "in_cet": np.dtype(np.bool_),
    "in_cep": np.dtype(np.bool_),
    "in_prac": np.dtype(np.bool_),
}
COLUMNS = {name: pa.from_numpy_dtype(dtype) for name, dtype in DTYPES.items()}
METADATA_KEYS = ("fingerprint", "round", "sha256", "prac_size")


@dataclass(frozen=True, eq=False)
class PracSet:
    """Per-sample PrAC bookkeeping for one round; all arrays 1-D, same length, dtypes as in DTYPES.

    in_prac is deliberately not required to equal in_cet | in_cep: a set transferred from
    another run or round may differ.
    """

    index: np.ndarray
    label: np.ndarray
    trained: np.ndarray
    forget_events: np.ndarray
    in_cet: np.ndarray
    in_cep: np.ndarray
    in_prac: np.ndarray

    def validate(self) -> None:
        """Raise ValueError unless lengths and dtypes match the contract and indices are unique."""
        for name, dtype in DTYPES.items():
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.ndim != 1:
                raise ValueError(f"PracSet.{name} must be a 1-D numpy array")
            if array.dtype != dtype:
                raise ValueError(f"PracSet.{name} has dtype {array.dtype}, expected {dtype}")
        n = len(self.index)
        for name in DTYPES:
            if len(getattr(self, name)) != n:
                raise ValueError(f"PracSet.{name} has length {len(getattr(self, name))}, expected {n}")
        if len(np.unique(self.index)) != n:
            raise ValueError("PracSet.index has duplicate values")

    @property
    def prac_indices(self) -> np.ndarray:
        """Sorted dataset indices of the samples in the PrAC set."""
        return np.sort(self.index[self.in_prac]).astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class PracSetFile:
    prac_set: PracSet
    fingerprint: str
    round: int
    sha256: str


def prac_set_sha256(prac_set: PracSet) -> str:
    """sha256 of the raw little-endian bytes of each column, in column order (bools as 0/1 bytes)."""
    digest = hashlib.sha256()
    for name, dtype in DTYPES.items():
        array = getattr(prac_set, name)
        digest.update(np.ascontiguousarray(array, dtype=dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def write_prac_set(path: str | os.PathLike[str], prac_set: PracSet, *, fingerprint: str, round: int) -> str:
    """Write `prac_set` atomically (row order kept as given); return its sha256."""
    prac_set.validate()
    sha256 = prac_set_sha256(prac_set)
    table = pa.table(
        [pa.array(getattr(prac_set, name), type=dtype) for name, dtype in COLUMNS.items()],
        schema=pa.schema([pa.field(name, dtype, nullable=False) for name, dtype in COLUMNS.items()]),
    )
    metadata = {
        "fingerprint": fingerprint,
        "round": str(int(round)),
        "sha256": sha256,
        "prac_size": str(int(np.count_nonzero(prac_set.in_prac))),
    }
    write_table(path, table, metadata)
    return sha256


def read_prac_set(path: str | os.PathLike[str], *, expected_fingerprint: str | None = None) -> PracSetFile:
    """Read and verify a PrAC-set file; any inconsistency is an ArtifactError naming the file."""
    path, table, meta = read_table(path, _WHAT)
    check_schema(path, _WHAT, table, meta, COLUMNS, METADATA_KEYS)

    def fail(message: str) -> ArtifactError:
        return ArtifactError(f"{_WHAT} {path}: {message}")

    arrays = {
        name: np.asarray(table.column(name).to_numpy(), dtype=dtype) for name, dtype in DTYPES.items()
    }
    prac_set = PracSet(**arrays)
    try:
        prac_set.validate()
    except ValueError as exc:
        raise fail(str(exc)) from None
    if prac_set_sha256(prac_set) != meta["sha256"]:
        raise fail("sha256 of the columns does not match the metadata (file corrupted or edited)")
    prac_size = int(np.count_nonzero(prac_set.in_prac))
    if meta["prac_size"] != str(prac_size):
        raise fail(f"metadata prac_size {meta['prac_size']!r} does not match the {prac_size} in_prac rows")
    round_ = parse_round(path, _WHAT, meta)
    check_fingerprint(path, _WHAT, meta["fingerprint"], expected_fingerprint)
    return PracSetFile(prac_set=prac_set, fingerprint=meta["fingerprint"], round=round_, sha256=meta["sha256"])
