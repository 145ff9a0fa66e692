"""How a run folder is laid out inside (a leaf: prac.layout.run_paths names the folders by fingerprint; a transfer
source is read by its path)."""
from __future__ import annotations

from pathlib import Path


def round_folder(run_root: Path, round_index: int) -> Path:
    """A round's folder in a run folder (also one read by path: a transfer source)."""
    return run_root / f"round_{round_index:02d}"
