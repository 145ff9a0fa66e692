"""Model registry: name -> builder(*, in_channels, num_classes, image_size)."""
from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from prac.errors import UserError
from prac.models.lenet import lenet300
from prac.models.resnet_cifar import resnet20, resnet56
from prac.models.resnet_imagenet import resnet18
from prac.models.small_conv import conv2, conv4, conv6
from prac.models.vgg import vgg16

Builder = Callable[..., nn.Module]

MODELS: dict[str, Builder] = {
    "resnet20": resnet20,
    "resnet56": resnet56,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "lenet300": lenet300,
    "conv2": conv2,
    "conv4": conv4,
    "conv6": conv6,
}


def model_names() -> list[str]:
    return list(MODELS)


def init_weights(model: nn.Module) -> None:
    """One init policy for every family, so seeds mean the same thing across models:
    kaiming-normal (fan_in, ReLU gain) for conv/linear weights as in OpenLTH, zero biases,
    BN weight 1 and bias 0. Draws come from torch's global RNG in module order, so the
    result is fixed by torch.manual_seed."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def model_builder(name: str) -> Builder:
    """The registered builder of `name`; UserError (one line) for an unknown name."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name]


def check_width(name: str, width: float) -> None:
    """UserError (one line) when a width other than 1 is asked of a model that has none."""
    if width != 1.0 and "width" not in inspect.signature(model_builder(name)).parameters:
        widths = ", ".join(n for n, b in MODELS.items() if "width" in inspect.signature(b).parameters)
        raise UserError(f"model.width: {name} has no width setting (models with one: {widths})")


def build_model(name: str, *, in_channels: int, num_classes: int, image_size: int, width: float = 1.0) -> nn.Module:
    """Build and initialise a registered model; UserError for an unknown name, bad sizes or a width it lacks."""
    builder = model_builder(name)
    for key, value in (("in_channels", in_channels), ("num_classes", num_classes), ("image_size", image_size)):
        if not isinstance(value, int) or value < 1:
            raise UserError(f"model {name}: {key} must be a positive integer, got {value!r}")
    check_width(name, width)
    sizes = {"width": width} if width != 1.0 else {}  # width 1 builds exactly what was built before width existed
    model = builder(in_channels=in_channels, num_classes=num_classes, image_size=image_size, **sizes)
    init_weights(model)
    return model
