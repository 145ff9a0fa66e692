"""Round 0 is shared by the arms of one experiment: stored once, under its own fingerprint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from prac.artifacts import load_torch, save_torch
from prac.train import RoundResult, Snapshot, StateDict


def _snapshot_to_dict(snap: Snapshot) -> dict:
    return {**{k: getattr(snap, k) for k in ("epochs_run", "iterations", "best_epoch", "best_val_acc", "test_acc",
                                              "eval_samples")},
            "last_state": snap.last_state, "best_state": snap.best_state,
            "forget_events": torch.from_numpy(snap.forget_events)}


def _snapshot_from_dict(d: dict) -> Snapshot:
    return Snapshot(d["epochs_run"], d["iterations"], d["last_state"], d["best_state"], d["best_epoch"],
                    d["best_val_acc"], d["test_acc"], d["forget_events"].numpy().astype(np.int32), d["eval_samples"])


def save_round0(path: Path, init_state: StateDict, result: RoundResult) -> None:
    save_torch(path, {
        "init_state": {k: v.cpu() for k, v in init_state.items()},
        "rewind_state": {k: v.cpu() for k, v in result.rewind_state.items()},
        "final": _snapshot_to_dict(result.final),
        "early": None if result.early is None else _snapshot_to_dict(result.early),
        "curves": result.curves,
    })


def load_round0(path: Path, device: torch.device) -> tuple[StateDict, RoundResult]:
    stored = load_torch(path, map_location=device)
    result = RoundResult(
        final=_snapshot_from_dict(stored["final"]),
        early=None if stored["early"] is None else _snapshot_from_dict(stored["early"]),
        rewind_state=stored["rewind_state"],
        curves=stored["curves"],
    )
    return stored["init_state"], result
