"""LeNet-300-100, the fully connected network of the original lottery-ticket paper (Frankle & Carbin 2019)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class LeNet300(nn.Module):
    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # flatten() reads logical NCHW order, so channels_last input gives the same features.
        out = F.relu(self.fc1(x.flatten(1)))
        out = F.relu(self.fc2(out))
        return self.fc3(out)


def lenet300(*, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return LeNet300(in_channels * image_size * image_size, num_classes)
