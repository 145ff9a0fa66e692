"""Forgetting statistics: per-sample correctness on every epoch, recorded from the training pass."""
from __future__ import annotations

import numpy as np
import torch

from prac.hardware.placement import to_numpy

NEVER_LEARNED = -1


class CorrectnessRecord:
    """A (epochs, samples) bool tensor on the training device, written once per epoch.

    Positions are positions within the round's training set D (0..|D|-1). Statistics start fresh
    each round: a new record per round. During an epoch, `record_batch` keeps each training batch's
    predicted classes (one argmax into a buffer, in visiting order); `end_epoch` compares them with the
    labels and writes the epoch's row with one scatter.
    """

    def __init__(self, epochs: int, samples: int, device: torch.device | str):
        self.correct = torch.zeros((epochs, samples), dtype=torch.bool, device=device)
        self._predicted = torch.empty(samples, dtype=torch.int64, device=device)  # this epoch, visiting order

    def record(self, epoch: int, positions: torch.Tensor, correct: torch.Tensor) -> None:
        self.correct[epoch].index_put_((positions,), correct)

    def record_batch(self, visits: torch.Tensor, logits: torch.Tensor) -> None:
        """Keep the predicted classes of the epoch's visits `visits` (positions in visiting order, a device
        tensor: the step reads it from its cursor, so it needs no host value) from the training forward
        pass's logits: no extra pass."""
        self._predicted.index_copy_(0, visits, torch.argmax(logits.detach(), dim=1))

    def end_epoch(self, epoch: int, order: torch.Tensor, labels: torch.Tensor) -> None:
        """Write epoch `epoch`: its i-th visit was sample order[i], labelled labels[i], predicted as kept by
        record_batch."""
        self.record(epoch, order, self._predicted[:order.shape[0]] == labels)

    def forget_events(self, epochs_run: int) -> np.ndarray:
        return forget_events(self.correct[:epochs_run])

    def state_dict(self) -> dict:
        return {"correct": self.correct}

    def load_state_dict(self, state: dict) -> None:
        self.correct.copy_(state["correct"].to(self.correct.device))


def forget_events(correct: torch.Tensor) -> np.ndarray:
    """Correct→incorrect transitions per sample over consecutive epochs (int32);
    NEVER_LEARNED (-1) for a sample that was never classified correctly."""
    if correct.shape[0] == 0:
        return np.full(correct.shape[1], NEVER_LEARNED, dtype=np.int32)
    events = (correct[:-1] & ~correct[1:]).sum(dim=0).to(torch.int32)
    events[~correct.any(dim=0)] = NEVER_LEARNED
    return to_numpy(events)
