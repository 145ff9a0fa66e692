"""The file a train-round stage writes: its final (and early-stop) snapshot, curves, rewind point.
Written from any device, read back on the CPU (prac.hardware.placement: the step that reads it places it)."""
from __future__ import annotations

from pathlib import Path

from prac.artifacts import load_torch, save_torch
from prac.training.round_checkpoint import snapshot_from_plain, snapshot_to_plain
from prac.training.round_types import RoundResult


def save_round(path: Path, result: RoundResult) -> None:
    save_torch(path, {
        "rewind_state": result.rewind_state,
        "final": snapshot_to_plain(result.final),
        "early": None if result.early is None else snapshot_to_plain(result.early),
        "curves": result.curves,
    })


def load_round(path: Path) -> RoundResult:
    stored = load_torch(path)
    return RoundResult(
        final=snapshot_from_plain(stored["final"]),
        early=None if stored["early"] is None else snapshot_from_plain(stored["early"]),
        rewind_state=stored["rewind_state"],
        curves=stored["curves"],
    )
