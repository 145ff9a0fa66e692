"""The data of one training round, shared by the loop (prac.training.train), its checkpoint (prac.training.round_checkpoint)
and the stages that read a round's result: what to train (RoundSpec), where it stood after some epochs
(Snapshot), what it returned (RoundResult). A leaf: it imports no module of the loop."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from prac.training.pruning import PruneRule, Scope
from prac.training.schedule import RoundSchedule

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class EarlyStopSpec:
    eps: float
    window: int
    # The candidate mask is what pruning at these rates would give now: layer type -> rate (a bare rate: one for
    # every tensor, all pooled: PruneRule.uniform).
    prune_rates: float | Mapping[str, float]
    stop: bool  # stop training when it fires; else only note where it fired (shared round 0)
    prune_scope: Scope = "global"  # the candidate's pruning scope

    def prune_rule(self, types: Mapping[str, str]) -> PruneRule:
        """The candidate's rule on a network of these layer types (tensor name -> type)."""
        if isinstance(self.prune_rates, Mapping):
            return PruneRule(types, self.prune_rates, self.prune_scope)
        return PruneRule.uniform(types, self.prune_rates, self.prune_scope)


@dataclass(frozen=True)
class RoundSpec:
    schedule: RoundSchedule
    seed: int  # data order and augmentation: per-epoch streams derived from it
    subset: np.ndarray | None = None  # sorted positions within D0; None trains on all of D0
    rewind_epoch: int | None = None  # keep the weights after this epoch (0: before training)
    early_stop: EarlyStopSpec | None = None


@dataclass
class Snapshot:
    """The round as if it ended after `epochs_run` epochs."""

    epochs_run: int
    iterations: int
    last_state: StateDict
    best_state: StateDict
    best_epoch: int
    best_val_acc: float
    test_acc: float  # of the best-validation weights
    forget_events: np.ndarray  # over the round's training set, in subset order
    eval_samples: int  # forward passes spent on validation and test up to here


@dataclass
class RoundResult:
    final: Snapshot
    early: Snapshot | None  # where early stop fired (the same as final when it stopped training)
    rewind_state: StateDict | None
    curves: list[dict[str, float]] = field(default_factory=list)
