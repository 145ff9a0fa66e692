"""Evaluation: predicted classes in eval mode, without augmentation."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from prac.data.device_data import DeviceData, DeviceSplit

EVAL_BATCH = 1024


@torch.no_grad()
def _outputs(model: nn.Module, split: DeviceSplit, data: DeviceData, channels_last: bool,
             reduce: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """`reduce` of the logits of every sample of `split`, in order, in eval mode, in batches."""
    was_training = model.training
    model.eval()
    with data.forward_context():
        outputs = [reduce(model(data.prepare(split.images[start:start + EVAL_BATCH], None, channels_last)))
                   for start in range(0, len(split), EVAL_BATCH)]
    model.train(was_training)
    return torch.cat(outputs)


def predict(model: nn.Module, split: DeviceSplit, data: DeviceData, channels_last: bool) -> torch.Tensor:
    """Predicted class of every sample of `split`, in order (int64, on the device)."""
    return _outputs(model, split, data, channels_last, lambda logits: logits.argmax(dim=1))


def logits(model: nn.Module, split: DeviceSplit, data: DeviceData, channels_last: bool) -> torch.Tensor:
    """The logits (float32) of every sample of `split`, in order."""
    return _outputs(model, split, data, channels_last, lambda out: out.float())


def probabilities(model: nn.Module, split: DeviceSplit, data: DeviceData, channels_last: bool) -> torch.Tensor:
    """Softmax outputs (float32) of every sample of `split`, in order."""
    return _outputs(model, split, data, channels_last, lambda logits: torch.softmax(logits.float(), dim=1))


def accuracy(model: nn.Module, split: DeviceSplit, data: DeviceData, channels_last: bool) -> float:
    return float((predict(model, split, data, channels_last) == split.labels).float().mean())
