"""ResNet-18 for 64x64 inputs (Tiny-ImageNet): 3x3 stride-1 stem and no max-pool, so the
last stage still sees 8x8 feature maps instead of ImageNet's 7x7 from 224x224."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from prac.models.resnet_cifar import BasicBlock


class ResNet18(nn.Module):
    def __init__(self, *, in_channels: int = 3, num_classes: int = 200) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = out.mean(dim=(2, 3))  # = adaptive_avg_pool2d(out, 1) (bit for bit); vmap has a batching rule for it
        return self.fc(out)


def resnet18(*, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    return ResNet18(in_channels=in_channels, num_classes=num_classes)
