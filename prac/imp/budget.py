"""Equal budget: a method at the prac run's budget (prac.strategies.methods `budget`) trains each round r ≥ 1 on
as many samples as the prac run of the same settings and seed trained round r on, for as many epochs (the same
scaled schedule, cut where prac's early stop cut it), so for the same iterations; the pruning baselines train
on that run's PrAC sets themselves. The prac run is read from its folder, finished (rounds.json) by this code
version; without it the run stops, in one line, before it trains. A comparison runs prac first
(prac.imp.concurrency)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prac.artifacts import read_prac_set
from prac.errors import ArtifactError, UserError
from prac.layout.fingerprint import fingerprint
from prac.layout.run_paths import finished_rows, run_paths
from prac.settings.config import ExperimentConfig
from prac.strategies.methods import get_method


@dataclass(frozen=True)
class RoundBudget:
    """What the prac run spent in one round."""

    epochs: int  # the epochs round r ran (where early stop fired, if it did)
    next_samples: int  # its PrAC set of round r: the training set of round r+1


def at_prac_budget(config: ExperimentConfig) -> bool:
    return get_method(config.method).at_prac_budget(config)


def reference_config(config: ExperimentConfig) -> ExperimentConfig:
    """The prac run whose budget `config`'s method trains at: the same settings and seed."""
    return config.model_copy(update={"method": "prac"})


def is_reference_of(candidate: ExperimentConfig, config: ExperimentConfig) -> bool:
    return at_prac_budget(config) and fingerprint(candidate) == fingerprint(reference_config(config))


def reference_folder(config: ExperimentConfig) -> Path:
    return run_paths(reference_config(config)).root


def _reference_rows(config: ExperimentConfig) -> list[dict]:
    rows = finished_rows(reference_config(config))
    if rows is None:
        raise UserError(
            f"method {config.method} trains at the budget of the prac run of the same settings and seed, which has "
            f"not finished in {reference_folder(config)} with this code: run `prac-lth run {config.preset} --method "
            f"prac --seed {config.seed}` with the same --set options first, or compare them together "
            f"(--methods prac,{config.method})")
    return rows


def check_reference(config: ExperimentConfig) -> None:
    """Before any training: the prac run this method's budget comes from is finished (one-line UserError)."""
    if at_prac_budget(config):
        _reference_rows(config)


def check_references(configs: list[ExperimentConfig]) -> None:
    """Before a comparison trains anything: each method at the prac run's budget finds that run among `configs`
    (it runs first: prac.imp.concurrency) or finished in its folder."""
    for config in configs:
        if at_prac_budget(config) and not any(is_reference_of(other, config) for other in configs):
            check_reference(config)


def round_budget(config: ExperimentConfig, round_index: int) -> RoundBudget:
    row = _reference_rows(config)[round_index]
    return RoundBudget(epochs=int(row["epochs_run"]), next_samples=int(row["prac_set_size"]))


def _reference_set_path(config: ExperimentConfig, round_index: int) -> Path:
    return run_paths(reference_config(config)).round(round_index) / "prac_set.parquet"


def reference_set(config: ExperimentConfig, round_index: int, train_index: np.ndarray) -> np.ndarray:
    """The prac run's PrAC set of round `round_index` (round r+1's training set), bool over this run's D0."""
    path = _reference_set_path(config, round_index)
    try:
        prac_set = read_prac_set(path, expected_fingerprint=fingerprint(reference_config(config))).prac_set
    except ArtifactError as error:
        raise UserError(f"the prac run's PrAC set of round {round_index}: {error}") from None
    if not np.array_equal(prac_set.index, train_index):
        raise UserError(f"{path} covers other samples than this run's D0 ({len(prac_set.index)} rows, D0 "
                        f"{len(train_index)})")
    return prac_set.in_prac.copy()


def budget_digest(config: ExperimentConfig, round_index: int) -> str:
    """What round `round_index` of a method at the prac run's budget reads from that run (its row of rounds.json
    and its PrAC set file), as a short digest for the stages' cache keys: a cached stage never outlives the
    prac run it was sized by. Empty for methods at their own budget; 'unfinished' while the prac run is."""
    if not at_prac_budget(config):
        return ""
    rows = finished_rows(reference_config(config))  # finished: one row per round, as this run has
    if rows is None:
        return "unfinished"
    digest = hashlib.sha256(json.dumps(rows[round_index], sort_keys=True).encode())
    prac_set = _reference_set_path(config, round_index)
    if prac_set.exists():
        digest.update(prac_set.read_bytes())
    return digest.hexdigest()[:12]
