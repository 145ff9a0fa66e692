"""The `transfer` method's input: the per-round PrAC sets of another run (e.g. found with another model on
the same data), refused in one line unless they are sets over this run's D0."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from prac.artifacts import read_prac_set
from prac.settings.config import ExperimentConfig
from prac.errors import ArtifactError, UserError, one_line
from prac.run_layout import round_folder


def source_folder(config: ExperimentConfig) -> Path:
    """`transfer.source` as a folder: a path as given if it is one, else `<output_dir>/<preset>/<fingerprint>`."""
    source = config.transfer.source
    if source is None:
        raise UserError("method 'transfer' needs transfer.source=<preset>/<fingerprint> (the run whose PrAC sets it trains on)")
    given = Path(source).expanduser()
    return given if given.is_dir() else Path(config.runtime.output_dir) / source


def _source_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise UserError(f"transfer.source {folder} is not a run folder (no config.json)")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"transfer.source {path} cannot be read ({one_line(error, 200)})") from None
    if not (isinstance(config, dict) and isinstance(config.get("data"), dict)
            and isinstance(config.get("fingerprint"), str)):
        raise UserError(f"transfer.source {path} is not a run's config (it lacks the data section or the fingerprint)")
    return config


def _source_d0(folder: Path) -> np.ndarray | None:
    """The source's D0 as its split.parquet lists it (positions in the train set), None if it has none."""
    path = folder / "split.parquet"
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path, columns=["index", "split"]).to_pydict()
        return np.asarray([i for i, part in zip(table["index"], table["split"]) if part == "train"], dtype=np.int64)
    except Exception as error:  # truncated or garbage files raise ArrowInvalid, OSError, KeyError...
        raise UserError(f"transfer.source {path} cannot be read ({one_line(error, 200)})") from None


# What decides D0 (the training split, row for row): equal in the source, or its sets are over other samples.
_SPLIT_FIELDS = ("dataset", "val_fraction", "split_seed", "train_limit")


def check_source(config: ExperimentConfig) -> None:
    """Before any training, from the source's files alone: the source split the same dataset the same way (the
    same D0), and it has a PrAC set for every round this run trains on a subset (rounds 1..R-1 read 0..R-2),
    each intact, of the source's run and over its D0."""
    folder = source_folder(config)
    source = _source_config(folder)
    ours = config.data.model_dump()
    for field in _SPLIT_FIELDS:
        if source["data"].get(field) != ours[field]:
            raise UserError(f"transfer.source {folder} has data.{field}={source['data'].get(field)!r}, this run "
                            f"{ours[field]!r}: its PrAC sets are over another training set")
    needed = config.prune.rounds - 1
    if needed > 0 and not (round_folder(folder, needed - 1) / "prac_set.parquet").is_file():
        raise UserError(f"transfer.source {folder} has no PrAC set of round {needed - 1} "
                        f"(this run trains {config.prune.rounds} rounds; finish the source first)")
    d0 = _source_d0(folder)
    for round_index in range(max(needed, 0)):
        prac_set = _read(folder, round_index, source["fingerprint"])
        if d0 is not None and not np.array_equal(prac_set.index, d0):
            path = round_folder(folder, round_index) / "prac_set.parquet"
            rows = (f"{len(prac_set.index)} rows, not the {len(d0)}" if len(prac_set.index) != len(d0)
                    else f"rows of other samples than the {len(d0)}")
            raise UserError(f"transfer.source {path} has {rows} samples of the source's D0 (its split.parquet)")


def _read(folder: Path, round_index: int, source_fingerprint: str):
    path = round_folder(folder, round_index) / "prac_set.parquet"
    if not path.is_file():
        raise UserError(f"transfer.source {folder} has no PrAC set of round {round_index} ({path} is missing)")
    try:
        return read_prac_set(path, expected_fingerprint=source_fingerprint).prac_set
    except ArtifactError as error:
        raise UserError(f"transfer.source: {error}") from None


def transferred_set(config: ExperimentConfig, round_index: int, train_index: np.ndarray) -> np.ndarray:
    """The source's round `round_index` PrAC set (the training set of its round r+1), over this run's D0."""
    folder = source_folder(config)
    prac_set = _read(folder, round_index, _source_config(folder)["fingerprint"])
    if not np.array_equal(prac_set.index, train_index):
        raise UserError(f"transfer.source {folder}: its PrAC set of round {round_index} covers {len(prac_set.index)} "
                        f"training samples, not this run's D0 of {len(train_index)}")
    return prac_set.in_prac.copy()
