"""The per-epoch checkpoint of one training round, so that a killed round continues where it stopped.

It holds what the loop of `train_round` carries across an epoch boundary: the model and optimizer
state, the correctness record, the early-stop rule, and `RoundProgress` (step counts, the best and
rewind weights, the previous candidate mask, the early snapshot, the curves). Everything is stored
as tensors, dicts, lists and plain scalars, which torch's weights-only loader accepts. No RNG state
is stored: every random draw of an epoch comes from a generator seeded by (seed, epoch).

An identity dict (the schedule, seed, data subset, batch size, ...) is stored beside it and checked
on load, so that a checkpoint of another round is refused rather than resumed. It holds the version of
the code that wrote it too: a checkpoint of other code is set aside and the round starts afresh.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prac.artifacts import load_torch, save_torch
from prac.code_version import science_code_version
from prac.settings.config import TrainConfig
from prac.training.early_stop import MaskDistanceEarlyStop
from prac.errors import ArtifactError, one_line
from prac.training.forgetting import CorrectnessRecord
from prac.training.masks import Mask
from prac.hardware.placement import to_device, to_numpy
from prac.training.round_types import RoundSpec, Snapshot, StateDict

FORMAT = 1


@dataclass
class RoundProgress:
    """What the training loop carries from one epoch to the next, besides the model, the optimizer,
    the correctness record and the early-stop rule (which have state_dicts of their own)."""

    best_state: StateDict
    rewind_state: StateDict | None
    epochs_done: int = 0
    step: int = 0  # optimizer steps so far: the round's iterations
    eval_samples: int = 0  # forward passes spent on validation and test
    best_epoch: int = 0
    best_val: float = -1.0
    best_test: float = float("nan")
    candidate_before: Mask | None = None  # the previous epoch's candidate mask (early stop)
    early: Snapshot | None = None
    curves: list[dict[str, float]] = field(default_factory=list)

    def to_plain(self) -> dict[str, Any]:
        plain = {f.name: getattr(self, f.name) for f in fields(self)}
        plain["early"] = None if self.early is None else snapshot_to_plain(self.early)
        return plain

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> "RoundProgress":
        early = plain["early"]
        return cls(**{**plain, "early": None if early is None else snapshot_from_plain(early)})


def snapshot_to_plain(snapshot: Snapshot) -> dict[str, Any]:
    plain = {f.name: getattr(snapshot, f.name) for f in fields(snapshot)}
    plain["forget_events"] = torch.from_numpy(np.ascontiguousarray(snapshot.forget_events))
    return plain


def snapshot_from_plain(plain: dict[str, Any]) -> Snapshot:
    return Snapshot(**{**plain, "forget_events": to_numpy(plain["forget_events"])})


def round_identity(spec: RoundSpec, train: TrainConfig, size: int, kept_weights: int) -> dict[str, Any]:
    """What makes a round this round; a checkpoint is resumed only when its identity is equal."""
    schedule, early_stop = spec.schedule, spec.early_stop
    subset = "all" if spec.subset is None else hashlib.sha256(
        np.ascontiguousarray(spec.subset, dtype=np.int64).tobytes()).hexdigest()[:16]
    return {
        "format": FORMAT,
        "code": science_code_version(),
        "epochs": schedule.epochs, "milestones": list(schedule.milestones), "warmup_epochs": schedule.warmup_epochs,
        "lr": schedule.lr, "gamma": schedule.gamma,
        "seed": spec.seed, "subset_size": size, "subset_sha256": subset, "batch_size": train.batch_size,
        "momentum": train.momentum, "weight_decay": train.weight_decay, "kept_weights": kept_weights,
        "rewind_epoch": spec.rewind_epoch,
        "early_stop": None if early_stop is None else {
            "eps": early_stop.eps, "window": early_stop.window,
            "prune_rates": _plain_rates(early_stop.prune_rates), "stop": early_stop.stop,
            # Added later: recorded only when not the default, as in the fingerprint, so a round checkpointed
            # before the setting existed still resumes.
            **({"prune_scope": early_stop.prune_scope} if early_stop.prune_scope != "global" else {})},
    }


def _plain_rates(rates: float | Mapping[str, float]) -> float | dict[str, float]:
    return rates if isinstance(rates, (int, float)) else dict(rates)


def save_round_checkpoint(path: Path, identity: dict[str, Any], progress: RoundProgress, model: nn.Module,
                          optimizer: torch.optim.Optimizer, record: CorrectnessRecord,
                          stopper: MaskDistanceEarlyStop | None) -> None:
    """Write the round's state after `progress.epochs_done` epochs (atomically: temp file + rename)."""
    save_torch(path, {
        "identity": identity,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "record": record.state_dict(),
        "early_stop": None if stopper is None else stopper.state_dict(),
        "progress": progress.to_plain(),
    })


def load_round_checkpoint(path: Path, identity: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
                          record: CorrectnessRecord, device: torch.device,
                          ) -> tuple[RoundProgress, MaskDistanceEarlyStop | None] | None:
    """Restore model, optimizer and record in place from `path`; return the loop's progress and the
    early-stop rule, or None when other code wrote it (its epochs are not this code's to continue).
    ArtifactError naming the file when it is unreadable or of another round."""
    stored = to_device(load_torch(path), device)
    if not isinstance(stored, dict) or not isinstance(stored.get("identity"), dict):
        raise ArtifactError(f"checkpoint {path}: not a training-round checkpoint")
    theirs = stored["identity"]
    if theirs.get("code") != identity.get("code"):
        return None
    differences = [f"{k} {theirs.get(k)!r} in the file, {v!r} here" for k, v in identity.items() if theirs.get(k) != v]
    if differences:
        raise ArtifactError(f"checkpoint {path}: belongs to another round ({'; '.join(differences)})")
    try:
        model.load_state_dict(stored["model"])
        optimizer.load_state_dict(stored["optimizer"])
        record.load_state_dict(stored["record"])
        stop_state = stored["early_stop"]
        stopper = None if stop_state is None else MaskDistanceEarlyStop.from_state_dict(stop_state)
        progress = RoundProgress.from_plain(stored["progress"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise ArtifactError(f"checkpoint {path}: cannot be resumed ({one_line(exc)})") from exc
    return progress, stopper
