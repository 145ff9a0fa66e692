"""Where an experiment's files live: named by fingerprints, so a run is found by what it is."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prac.config import ExperimentConfig
from prac.fingerprint import fingerprint, round0_fingerprint


@dataclass(frozen=True)
class RunPaths:
    root: Path  # <output_dir>/<preset>/<fingerprint>: this arm × seed
    shared_round0: Path  # <output_dir>/<preset>/round0-<round-0 fingerprint>: shared by the arms

    def round(self, round_index: int) -> Path:
        return self.root / f"round_{round_index:02d}"


def run_paths(config: ExperimentConfig) -> RunPaths:
    base = Path(config.runtime.output_dir) / config.preset
    return RunPaths(base / fingerprint(config), base / f"round0-{round0_fingerprint(config)}")
