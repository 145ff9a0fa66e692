"""One training round as its epochs see it: the state a round carries from epoch to epoch (model, optimizer,
correctness record, early-stop rule, best and rewind weights, curves, checkpoint) and what happens between two
epochs, apart from the epoch's steps themselves. `train_round` (prac.training.train) runs its epochs with a step
of its own; `train_stacked` (prac.training.stacked) runs the epochs of several rounds as one computation.

Every random draw of an epoch comes from a generator seeded by (seed, epoch), and each epoch's learning rates
from the round's step count: a round's epoch does not depend on what else trains beside it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from prac.data.device_data import DeviceData
from prac.hardware.placement import require_on
from prac.seeds import seed_for
from prac.settings.config import TrainConfig
from prac.training.early_stop import MaskDistanceEarlyStop
from prac.training.evaluate import accuracy
from prac.training.forgetting import CorrectnessRecord
from prac.training.masks import Mask, MaskEnforcer, hamming_distance, kept_count, layer_types
from prac.training.pruning import magnitude_prune
from prac.training.round_checkpoint import RoundProgress, load_round_checkpoint, round_identity, save_round_checkpoint
from prac.training.round_types import RoundResult, RoundSpec, Snapshot, StateDict
from prac.training.schedule import steps_per_epoch


def clone_state(model: nn.Module) -> StateDict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def prunable_weights(model: nn.Module, mask: Mask) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {name: params[name].detach() for name in mask}


class RoundRun:
    """`model` (holding the round's start weights, or resumed from `checkpoint_path`) trained under `mask`."""

    def __init__(self, model: nn.Module, mask: Mask, data: DeviceData, train: TrainConfig, spec: RoundSpec,
                 log: Callable[[str], None] | None = None, checkpoint_path: Path | None = None):
        device = data.train.images.device
        require_on(device, mask, "mask")  # what was read from disk is placed by the caller (prac.hardware.placement)
        self.model, self.mask, self.data, self.train, self.spec, self.log = model, mask, data, train, spec, log
        self.device = device
        self.positions = (torch.arange(len(data.train), device=device) if spec.subset is None
                          else torch.as_tensor(spec.subset, dtype=torch.int64, device=device))
        self.size = self.positions.numel()
        self.per_epoch = steps_per_epoch(self.size, train.batch_size)

        model.train()
        if train.channels_last:
            model.to(memory_format=torch.channels_last)
        self.enforcer = MaskEnforcer(model, mask)
        self.enforcer.apply_to_weights()
        self.optimizer = torch.optim.SGD(model.parameters(), lr=spec.schedule.lr, momentum=train.momentum,
                                         weight_decay=train.weight_decay)
        self.record = CorrectnessRecord(spec.schedule.epochs, self.size, device)
        self.stopper = (MaskDistanceEarlyStop(spec.early_stop.eps, spec.early_stop.window,
                                              warmup=spec.schedule.warmup_epochs) if spec.early_stop else None)
        self.stops_training = spec.early_stop is not None and spec.early_stop.stop
        # The candidate masks early stop compares are pruned as the round's own mask will be (its layer types).
        self.candidate_rule = spec.early_stop.prune_rule(layer_types(model)) if spec.early_stop else None
        self.unpruned_at_start = kept_count(mask)
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.identity = (None if self.checkpoint_path is None  # hashes the subset: only where a checkpoint needs it
                         else round_identity(spec, train, self.size, self.unpruned_at_start))
        self.progress = self._resumed() or RoundProgress(
            best_state=clone_state(model), rewind_state=clone_state(model) if spec.rewind_epoch == 0 else None)

    def _resumed(self) -> RoundProgress | None:
        path, log = self.checkpoint_path, self.log
        if path is None or not path.exists():
            return None
        resumed = load_round_checkpoint(path, self.identity, self.model, self.optimizer, self.record, self.device)
        if resumed is None:
            if log is not None:
                log(f"{path} was written by other code: the round starts afresh")
            return None
        progress, self.stopper = resumed
        if log is not None:
            log(f"resumed from {path} after epoch {progress.epochs_done}/{self.spec.schedule.epochs}")
        return progress

    @property
    def finished(self) -> bool:
        """No epoch left: the schedule's end, or early stop fired (possibly before a resume) and stops training."""
        progress = self.progress
        return progress.epochs_done >= self.spec.schedule.epochs or (progress.early is not None and self.stops_training)

    def epoch_inputs(self) -> tuple[torch.Tensor, torch.Generator, list[float]]:
        """The next epoch's visiting order, the generator its augmentation is drawn from next, and the learning
        rate of each of its steps."""
        epoch, progress = self.progress.epochs_done, self.progress
        generator = torch.Generator(device=self.device).manual_seed(seed_for(self.spec.seed, "epoch", epoch))
        order = torch.randperm(self.size, generator=generator, device=self.device)
        rates = [self.spec.schedule.learning_rate(progress.step + i, self.per_epoch) for i in range(self.per_epoch)]
        return order, generator, rates

    def end_epoch(self, order: torch.Tensor, steps_taken: int, last_rate: float, loss_sum: float) -> None:
        """After the epoch's steps (in `order`, ending at `last_rate`, `loss_sum` the sum of its samples' losses):
        the record's row, validation, the best and rewind weights, early stop, the curves and the checkpoint."""
        model, progress, spec, train, data = self.model, self.progress, self.spec, self.train, self.data
        epoch = progress.epochs_done
        progress.step += steps_taken
        for group in self.optimizer.param_groups:
            group["lr"] = last_rate
        self.enforcer.apply_to_weights()  # a guard: changes no bit (see MaskEnforcer)
        self.record.end_epoch(epoch, order, data.train.labels.index_select(0, self.positions[order]))

        val_acc = accuracy(model, data.val, data, train.channels_last)
        progress.eval_samples += len(data.val)
        if val_acc > progress.best_val:
            progress.best_state, progress.best_epoch, progress.best_val = clone_state(model), epoch + 1, val_acc
            progress.best_test = accuracy(model, data.test, data, train.channels_last)
            progress.eval_samples += len(data.test)
        if spec.rewind_epoch == epoch + 1:
            progress.rewind_state = clone_state(model)

        distance = float("nan")
        if self.stopper is not None:
            candidate = magnitude_prune(prunable_weights(model, self.mask), self.mask, self.candidate_rule)
            if progress.candidate_before is not None:
                distance = hamming_distance(candidate, progress.candidate_before) / self.unpruned_at_start
                if self.stopper.update(distance, epoch + 1) and progress.early is None:
                    progress.early = self.snapshot(epoch + 1)
            progress.candidate_before = candidate

        progress.curves.append({
            "epoch": epoch + 1,
            "train_loss": loss_sum / self.size,
            "train_acc": float(self.record.correct[epoch].float().mean()),
            "val_acc": val_acc,
            "mask_distance": distance,
            "lr": self.optimizer.param_groups[0]["lr"],
        })
        progress.epochs_done = epoch + 1
        if self.checkpoint_path is not None:
            save_round_checkpoint(self.checkpoint_path, self.identity, progress, model, self.optimizer, self.record,
                                  self.stopper)
        if self.log is not None:
            curve = progress.curves[-1]
            self.log(f"epoch {epoch + 1}/{spec.schedule.epochs} loss {curve['train_loss']:.4f} "
                     f"train {curve['train_acc']:.4f} val {val_acc:.4f}"
                     + (f" d {distance:.4f}" if distance == distance else ""))

    def snapshot(self, epochs_run: int) -> Snapshot:
        progress = self.progress
        return Snapshot(epochs_run, progress.step, clone_state(self.model), progress.best_state, progress.best_epoch,
                        progress.best_val, progress.best_test, self.record.forget_events(epochs_run),
                        progress.eval_samples)

    def result(self) -> RoundResult:
        progress = self.progress
        stopped = progress.early is not None and self.stops_training
        final = progress.early if stopped else self.snapshot(progress.epochs_done)
        return RoundResult(final=final, early=progress.early, rewind_state=progress.rewind_state,
                           curves=progress.curves)
