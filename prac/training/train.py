"""One training round: SGD on (a subset of) D0 with the mask enforced, recording what PrAC needs.

The whole loop is here, in prac.training.round_run (what happens between two epochs) and in
prac.training.train_step (the step): per epoch a seeded shuffle of the subset's positions and the epoch's
augmentation draws; per step a batch gathered from the device tensor, augmented and normalised on the device,
the LR of the schedule, the pruned gradients zeroed (which keeps pruned weights at exactly zero; the mask is
re-applied after each epoch as a guard) and the predicted classes kept; per epoch one scatter into the
correctness record, then validation.
With a checkpoint path, the loop's state is saved after every epoch and a killed round resumes from it
(prac.training.round_checkpoint).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

from torch import nn

from prac.data.device_data import DeviceData
from prac.settings.config import TrainConfig
from prac.training.masks import Mask, MaskEnforcer
from prac.training.round_run import RoundRun, clone_state, prunable_weights
from prac.training.round_types import RoundResult, RoundSpec, StateDict
from prac.training.train_step import TrainStep

__all__ = ["train_round", "load_start_state", "clone_state", "prunable_weights", "run_alone"]


def train_round(
    model: nn.Module,
    mask: Mask,
    data: DeviceData,
    train: TrainConfig,
    spec: RoundSpec,
    log: Callable[[str], None] | None = None,
    checkpoint_path: Path | None = None,
) -> RoundResult:
    """Train `model` (holding the round's start weights) under `mask`; see RoundResult.

    With `checkpoint_path`, the round's state is saved there after every epoch, and a round that
    finds the file continues after its last saved epoch (or returns at once if it had finished),
    ending bit-identical to an uninterrupted round on the same device.
    """
    run = RoundRun(model, mask, data, train, spec, log, checkpoint_path)
    run_alone(run)
    return run.result()


def run_alone(run: RoundRun) -> None:
    """The round's remaining epochs, on a step of its own."""
    steps = TrainStep(run.model, run.enforcer, run.optimizer, run.data, run.positions, run.train.batch_size,
                      run.train.channels_last, run.record, run.log)
    while not run.finished:
        order, generator, rates = run.epoch_inputs()
        taken = steps.run_epoch(order, generator, rates)
        run.end_epoch(order, taken, rates[-1], float(steps.loss_sum))


def load_start_state(model: nn.Module, state: StateDict, mask: Mask) -> nn.Module:
    """Load `state` (e.g. the rewind point) and zero the pruned weights."""
    model.load_state_dict(copy.copy(state))
    MaskEnforcer(model, mask).apply_to_weights()
    return model
