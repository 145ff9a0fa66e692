"""Where an experiment's files live: named by fingerprints, so a run is found by what it is."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prac.code_version import code_version_of
from prac.settings.config import ExperimentConfig
from prac.errors import UserError, one_line
from prac.layout.fingerprint import fingerprint, round0_fingerprint
from prac.run_layout import round_folder


@dataclass(frozen=True)
class RunPaths:
    root: Path  # <output_dir>/<preset>/<fingerprint>: this arm × seed
    shared_round0: Path  # <output_dir>/<preset>/round0-<round-0 fingerprint>: shared by the arms

    def round(self, round_index: int) -> Path:
        return round_folder(self.root, round_index)


def run_paths(config: ExperimentConfig) -> RunPaths:
    base = Path(config.runtime.output_dir) / config.preset
    return RunPaths(base / fingerprint(config), base / f"round0-{round0_fingerprint(config)}")


def recorded(run_root: Path, key: str) -> str | None:
    """What a run folder's config.json records under `key` ("code_version": the code its results were computed
    by; "data_digest": the data they were computed from), None if unknown."""
    try:
        return json.loads((run_root / "config.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def finished_rows(config: ExperimentConfig, data_digest: Callable[[], str] | None = None) -> list[dict] | None:
    """The per-round rows of an experiment that ran to its end before (its rounds.json, written last) by this
    code version (prac.code_version) and, when `data_digest` is given, from the data it digests (prac.data.digest;
    called only for a finished run: it loads the data), else None."""
    path = run_paths(config).root / "rounds.json"
    if not path.exists() or recorded(path.parent, "code_version") != code_version_of(config):
        return None
    if data_digest is not None and recorded(path.parent, "data_digest") != data_digest():  # loads the data: last
        return None
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rows if isinstance(rows, list) and len(rows) == config.prune.rounds else None


def check_output_dir(output_dir: str) -> None:
    """The output folder exists (created if missing) and can be written, else one line before anything runs."""
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"output directory {path} cannot be created ({one_line(error, 200)})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"output directory {path} is not writable")
