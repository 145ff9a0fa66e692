"""One training round: SGD on (a subset of) D0 with the mask enforced, recording what PrAC needs.

The whole loop is here and in prac.training.train_step (the step): per epoch a seeded shuffle of the subset's
positions and the epoch's augmentation draws; per step a batch gathered from the device tensor, augmented
and normalised on the device, the LR of the schedule, the pruned gradients zeroed (which keeps pruned
weights at exactly zero; the mask is re-applied after each epoch as a guard) and the predicted classes
kept; per epoch one scatter into the correctness record, then validation.
With a checkpoint path, the loop's state is saved after every epoch and a killed round resumes from it
(prac.training.round_checkpoint).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from prac.settings.config import TrainConfig
from prac.data.device_data import DeviceData
from prac.training.early_stop import MaskDistanceEarlyStop
from prac.training.evaluate import accuracy
from prac.seeds import seed_for
from prac.training.forgetting import CorrectnessRecord
from prac.training.masks import Mask, MaskEnforcer, hamming_distance, kept_count
from prac.hardware.placement import require_on
from prac.training.pruning import magnitude_prune
from prac.training.round_checkpoint import RoundProgress, load_round_checkpoint, round_identity, save_round_checkpoint
from prac.training.round_types import RoundResult, RoundSpec, Snapshot, StateDict
from prac.training.schedule import steps_per_epoch
from prac.training.train_step import TrainStep


def clone_state(model: nn.Module) -> StateDict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def prunable_weights(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: params[name].detach() for name in mask}


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
    device = data.train.images.device
    require_on(device, mask, "mask")  # what was read from disk is placed by the caller (prac.hardware.placement)
    positions = (torch.arange(len(data.train), device=device) if spec.subset is None
                 else torch.as_tensor(spec.subset, dtype=torch.int64, device=device))
    size, batch = positions.numel(), train.batch_size
    per_epoch = steps_per_epoch(size, batch)
    schedule = spec.schedule

    model.train()
    if train.channels_last:
        model.to(memory_format=torch.channels_last)
    enforcer = MaskEnforcer(model, mask)
    enforcer.apply_to_weights()
    optimizer = torch.optim.SGD(model.parameters(), lr=schedule.lr, momentum=train.momentum,
                                weight_decay=train.weight_decay)
    record = CorrectnessRecord(schedule.epochs, size, device)
    stopper = MaskDistanceEarlyStop(spec.early_stop.eps, spec.early_stop.window) if spec.early_stop else None
    stops_training = spec.early_stop is not None and spec.early_stop.stop
    unpruned_at_start = kept_count(mask)

    progress: RoundProgress | None = None
    if checkpoint_path is not None:
        checkpoint_path = Path(checkpoint_path)
        identity = round_identity(spec, train, size, unpruned_at_start)
        resumed = load_round_checkpoint(checkpoint_path, identity, model, optimizer, record, device) \
            if checkpoint_path.exists() else None
        if resumed is not None:
            progress, stopper = resumed
            if log is not None:
                log(f"resumed from {checkpoint_path} after epoch {progress.epochs_done}/{schedule.epochs}")
        elif checkpoint_path.exists() and log is not None:
            log(f"{checkpoint_path} was written by other code: the round starts afresh")
    if progress is None:
        progress = RoundProgress(best_state=clone_state(model),
                                 rewind_state=clone_state(model) if spec.rewind_epoch == 0 else None)

    def snapshot(epochs_run: int) -> Snapshot:
        return Snapshot(epochs_run, progress.step, clone_state(model), progress.best_state, progress.best_epoch,
                        progress.best_val, progress.best_test, record.forget_events(epochs_run), progress.eval_samples)

    steps = TrainStep(model, enforcer, optimizer, data, positions, batch, train.channels_last, record, log)
    for epoch in range(progress.epochs_done, schedule.epochs):
        if progress.early is not None and stops_training:
            break  # early stop fired after the previous epoch (possibly before a resume)
        generator = torch.Generator(device=device).manual_seed(seed_for(spec.seed, "epoch", epoch))
        order = torch.randperm(size, generator=generator, device=device)
        rates = [schedule.learning_rate(progress.step + i, per_epoch) for i in range(per_epoch)]
        progress.step += steps.run_epoch(order, generator, rates)
        for group in optimizer.param_groups:
            group["lr"] = rates[-1]
        enforcer.apply_to_weights()  # a guard: changes no bit (see MaskEnforcer)
        record.end_epoch(epoch, order, data.train.labels.index_select(0, positions[order]))

        val_acc = accuracy(model, data.val, data, train.channels_last)
        progress.eval_samples += len(data.val)
        if val_acc > progress.best_val:
            progress.best_state, progress.best_epoch, progress.best_val = clone_state(model), epoch + 1, val_acc
            progress.best_test = accuracy(model, data.test, data, train.channels_last)
            progress.eval_samples += len(data.test)
        if spec.rewind_epoch == epoch + 1:
            progress.rewind_state = clone_state(model)

        distance = float("nan")
        if stopper is not None:
            candidate = magnitude_prune(prunable_weights(model, mask), mask, spec.early_stop.prune_rate,
                                        spec.early_stop.prune_scope)
            if progress.candidate_before is not None:
                distance = hamming_distance(candidate, progress.candidate_before) / unpruned_at_start
                if stopper.update(distance) and progress.early is None:
                    progress.early = snapshot(epoch + 1)
            progress.candidate_before = candidate

        progress.curves.append({
            "epoch": epoch + 1,
            "train_loss": float(steps.loss_sum) / size,
            "train_acc": float(record.correct[epoch].float().mean()),
            "val_acc": val_acc,
            "mask_distance": distance,
            "lr": optimizer.param_groups[0]["lr"],
        })
        progress.epochs_done = epoch + 1
        if checkpoint_path is not None:
            save_round_checkpoint(checkpoint_path, identity, progress, model, optimizer, record, stopper)
        if log is not None:
            log(f"epoch {epoch + 1}/{schedule.epochs} loss {progress.curves[-1]['train_loss']:.4f} "
                f"train {progress.curves[-1]['train_acc']:.4f} val {val_acc:.4f}"
                + (f" d {distance:.4f}" if distance == distance else ""))

    stopped = progress.early is not None and stops_training
    final = progress.early if stopped else snapshot(progress.epochs_done)
    return RoundResult(final=final, early=progress.early, rewind_state=progress.rewind_state, curves=progress.curves)


def load_start_state(model: nn.Module, state: StateDict, mask: Mask) -> nn.Module:
    """Load `state` (e.g. the rewind point) and zero the pruned weights."""
    model.load_state_dict(copy.copy(state))
    MaskEnforcer(model, mask).apply_to_weights()
    return model
