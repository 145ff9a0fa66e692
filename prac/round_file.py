"""The file a train-round stage writes: its final (and early-stop) snapshot, curves, rewind point."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from prac.artifacts import load_torch, save_torch
from prac.train import RoundResult, Snapshot, StateDict

_SCALARS = ("epochs_run", "iterations", "best_epoch", "best_val_acc", "test_acc", "eval_samples")


def _cpu(state: StateDict) -> StateDict:
    return {k: v.cpu() for k, v in state.items()}


def snapshot_to_dict(snap: Snapshot) -> dict:
    return {**{k: getattr(snap, k) for k in _SCALARS},
            "last_state": _cpu(snap.last_state), "best_state": _cpu(snap.best_state),
            "forget_events": torch.from_numpy(np.asarray(snap.forget_events, dtype=np.int32))}


def snapshot_from_dict(d: dict) -> Snapshot:
    return Snapshot(d["epochs_run"], d["iterations"], d["last_state"], d["best_state"], d["best_epoch"],
                    d["best_val_acc"], d["test_acc"], d["forget_events"].numpy().astype(np.int32), d["eval_samples"])


def save_round(path: Path, result: RoundResult) -> None:
    save_torch(path, {
        "rewind_state": None if result.rewind_state is None else _cpu(result.rewind_state),
        "final": snapshot_to_dict(result.final),
        "early": None if result.early is None else snapshot_to_dict(result.early),
        "curves": result.curves,
    })


def load_round(path: Path, device: torch.device | str = "cpu") -> RoundResult:
    stored = load_torch(path, map_location=device)
    return RoundResult(
        final=snapshot_from_dict(stored["final"]),
        early=None if stored["early"] is None else snapshot_from_dict(stored["early"]),
        rewind_state=stored["rewind_state"],
        curves=stored["curves"],
    )
