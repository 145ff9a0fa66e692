"""VGG-16 with BN for CIFAR, like OpenLTH's cifar_vgg: conv stack, global average pool, one Linear."""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from prac.errors import UserError

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    def __init__(self, cfg=VGG16_CFG, *, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels, conv_i, pool_i = in_channels, 0, 0
        for item in cfg:
            if item == "M":
                pool_i += 1
                layers[f"pool{pool_i}"] = nn.MaxPool2d(2)
            else:
                conv_i += 1
                layers[f"conv{conv_i}"] = nn.Conv2d(channels, item, 3, padding=1)
                layers[f"bn{conv_i}"] = nn.BatchNorm2d(item)
                layers[f"relu{conv_i}"] = nn.ReLU()
                channels = item
        self.features = nn.Sequential(layers)  # names: features.conv1 ... features.conv13
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x).mean(dim=(2, 3))  # = adaptive_avg_pool2d(., 1) (bit for bit); vmap batches it
        return self.fc(out)


def vgg16(*, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    if image_size < 32:  # five 2x2 max-pools need at least 32 pixels
        raise UserError(f"vgg16 needs images of at least 32x32, got {image_size}x{image_size}")
    return VGG(VGG16_CFG, in_channels=in_channels, num_classes=num_classes)
