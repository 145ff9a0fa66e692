"""Evaluation: predicted classes in eval mode, without augmentation."""
from __future__ import annotations

import torch
from torch import nn

from prac.data.device_data import DeviceData, DeviceSplit

EVAL_BATCH = 1024


@torch.no_grad()
def predict(model: nn.Module, split: DeviceSplit, data: DeviceData, channels_last: bool) -> torch.Tensor:
    """Predicted class of every sample of `split`, in order (int64, on the device)."""
    was_training = model.training
    model.eval()
    with data.forward_context():
        predictions = [
            model(data.prepare(split.images[start:start + EVAL_BATCH], None, channels_last)).argmax(dim=1)
            for start in range(0, len(split), EVAL_BATCH)
        ]
    model.train(was_training)
    return torch.cat(predictions)


def accuracy(model: nn.Module, split: DeviceSplit, data: DeviceData, channels_last: bool) -> float:
    return float((predict(model, split, data, channels_last) == split.labels).float().mean())
