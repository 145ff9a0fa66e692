"""Learning-rate schedules, and the dynamic scaling of a round's schedule to the size of its data."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from prac.settings.config import TrainConfig


@dataclass(frozen=True)
class RoundSchedule:
    """How one round trains: whole epochs, with milestones and warm-up in epochs of this round."""

    epochs: int
    milestones: tuple[int, ...]
    warmup_epochs: int
    lr: float
    gamma: float

    def learning_rate(self, step: int, steps_per_epoch: int) -> float:
        """LR at optimizer step `step` (0-based): multi-step decay by epoch, linear warm-up by step."""
        epoch = step // steps_per_epoch
        lr = self.lr * self.gamma ** sum(1 for m in self.milestones if epoch >= m)
        warmup_steps = self.warmup_epochs * steps_per_epoch
        if step < warmup_steps:
            lr *= (step + 1) / warmup_steps
        return lr


def steps_per_epoch(samples: int, batch_size: int) -> int:
    return max(1, math.ceil(samples / batch_size))


def full_schedule(train: TrainConfig) -> RoundSchedule:
    return RoundSchedule(train.epochs, tuple(train.milestones), train.warmup_epochs, train.lr, train.gamma)


def scaled_schedule(
    train: TrainConfig,
    subset_size: int,
    full_size: int,
    scaling: Literal["epochs", "iterations"],
    min_epochs: int = 1,
) -> RoundSchedule:
    """The schedule of a round that trains on `subset_size` of the `full_size` samples of D0.

    epochs:     epochs (and milestones, warm-up) × |P|/|D0|: the reference code's rule; the
                iterations spent then scale with (|P|/|D0|)².
    iterations: optimizer steps = |P|/|D0| × the full schedule's steps (the paper's formula), as
                whole epochs of the subset; milestones and warm-up scale with the epoch count.
    Never fewer than `min_epochs` (capped at the full schedule's epochs), nor than one epoch.
    """
    if not 0 < subset_size <= full_size:
        raise ValueError(f"subset size {subset_size} must be in 1..{full_size}")
    ratio = subset_size / full_size
    if scaling == "epochs":
        epochs = max(1, round(train.epochs * ratio))
    else:
        target_steps = ratio * train.epochs * steps_per_epoch(full_size, train.batch_size)
        epochs = max(1, round(target_steps / steps_per_epoch(subset_size, train.batch_size)))
    epochs = max(epochs, min(min_epochs, train.epochs))
    factor = epochs / train.epochs
    return RoundSchedule(
        epochs=epochs,
        milestones=tuple(max(1, round(m * factor)) for m in train.milestones),
        warmup_epochs=min(round(train.warmup_epochs * factor), epochs - 1),
        lr=train.lr,
        gamma=train.gamma,
    )
