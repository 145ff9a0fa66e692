"""Conv-2 / Conv-4 / Conv-6 of Frankle & Carbin (2019), with BN after each conv so they train from scratch.

The head flattens the last feature map (as in the paper, where the dense layers hold most of
the weights) rather than pooling it; its input size is computed from image_size, so 8x8 and
28x28 inputs both work.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from prac.errors import UserError


class SmallConv(nn.Module):
    """`stages` conv pairs (64, 128, ... channels times `width`), each pair then a 2x2 max-pool."""

    def __init__(self, stages: int, *, in_channels: int, num_classes: int, image_size: int, width: float = 1.0) -> None:
        super().__init__()
        if image_size >> stages < 1:
            raise UserError(f"conv{2 * stages} needs images of at least {2 ** stages}x{2 ** stages}, got {image_size}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels, size, i = in_channels, image_size, 0
        for stage in range(stages):
            out_channels = max(1, round(64 * 2**stage * width))
            for _ in range(2):
                i += 1
                layers[f"conv{i}"] = nn.Conv2d(channels, out_channels, 3, padding=1, bias=False)
                layers[f"bn{i}"] = nn.BatchNorm2d(out_channels)
                layers[f"relu{i}"] = nn.ReLU()
                channels = out_channels
            layers[f"pool{stage + 1}"] = nn.MaxPool2d(2)
            size //= 2
        self.features = nn.Sequential(layers)
        self.fc1 = nn.Linear(channels * size * size, 256)
        self.fc2 = nn.Linear(256, 256)
        self.fc3 = nn.Linear(256, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x).flatten(1)  # logical NCHW order, same for channels_last
        out = self.relu(self.fc1(out))
        out = self.relu(self.fc2(out))
        return self.fc3(out)


def conv2(*, in_channels: int, num_classes: int, image_size: int, width: float = 1.0) -> nn.Module:
    return SmallConv(1, in_channels=in_channels, num_classes=num_classes, image_size=image_size, width=width)


def conv4(*, in_channels: int, num_classes: int, image_size: int, width: float = 1.0) -> nn.Module:
    return SmallConv(2, in_channels=in_channels, num_classes=num_classes, image_size=image_size, width=width)


def conv6(*, in_channels: int, num_classes: int, image_size: int, width: float = 1.0) -> nn.Module:
    return SmallConv(3, in_channels=in_channels, num_classes=num_classes, image_size=image_size, width=width)
