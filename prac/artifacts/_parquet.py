"""Parquet helpers shared by the mask and PrAC-set files: deterministic writes, checked reads."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prac.artifacts.atomic import atomic_write
from prac.errors import one_line
from prac.errors import ArtifactError


def write_table(path: str | os.PathLike[str], table: pa.Table, metadata: dict[str, str]) -> None:
    """Write `table` with string metadata atomically; same table and metadata -> same bytes.

    Options are pinned rather than left to defaults so the bytes do not change if a default
    does; pyarrow embeds only its version string (`created_by`), never a time or path.
    """
    table = table.replace_schema_metadata(metadata)
    with atomic_write(path) as tmp:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            use_dictionary=False,
            write_statistics=False,
            row_group_size=max(table.num_rows, 1),
        )


def read_table(path: str | os.PathLike[str], what: str) -> tuple[Path, pa.Table, dict[str, str]]:
    """Read a Parquet file and its string metadata; ArtifactError if it is missing or not Parquet."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{what} {path}: file not found")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # truncated or garbage files raise ArrowInvalid, OSError, ...
        raise ArtifactError(f"{what} {path}: not a readable Parquet file ({one_line(exc)})") from exc
    raw = table.schema.metadata or {}
    metadata = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}
    return path, table, metadata


def check_schema(
    path: Path, what: str, table: pa.Table, metadata: dict[str, str],
    columns: dict[str, pa.DataType], keys: tuple[str, ...],
) -> None:
    """Every required column is present with its exact type and no nulls; every metadata key present."""
    for name, dtype in columns.items():
        if name not in table.column_names:
            raise ArtifactError(f"{what} {path}: missing column '{name}'")
        column = table.column(name)
        if column.type != dtype:
            raise ArtifactError(f"{what} {path}: column '{name}' has type {column.type}, expected {dtype}")
        if column.null_count:
            raise ArtifactError(f"{what} {path}: column '{name}' has {column.null_count} null value(s)")
    missing = [key for key in keys if key not in metadata]
    if missing:
        raise ArtifactError(f"{what} {path}: missing metadata key(s) {', '.join(missing)}")


def parse_round(path: Path, what: str, metadata: dict[str, str]) -> int:
    try:
        return int(metadata["round"])
    except ValueError:
        raise ArtifactError(f"{what} {path}: metadata round {metadata['round']!r} is not an integer") from None


def check_fingerprint(path: Path, what: str, found: str, expected: str | None) -> None:
    if expected is not None and found != expected:
        raise ArtifactError(f"{what} {path}: fingerprint {found!r} does not match expected {expected!r}")
