"""Model registry: parameter counts, shapes, channels_last, seeding, gradients, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from prac.errors import UserError
from prac.models import build_model, model_names

# name -> (in_channels, num_classes, image_size, exact parameter count)
COUNTS = {
    "resnet20": (3, 10, 32, 272_474),
    "resnet56": (3, 10, 32, 855_770),
    "vgg16": (3, 10, 32, 14_728_266),
    "resnet18": (3, 200, 64, 11_271_432),  # 11,173,962 with a 10-class head
    "lenet300": (1, 10, 28, 266_610),
    "conv2": (1, 10, 28, 3_317_578),
    "conv4": (1, 10, 28, 1_933_642),
    "conv6": (1, 10, 28, 1_803_594),
}
# Small models that get the slower checks (channels_last, seeding, backward).
SMALL = [
    ("resnet20", 3, 32),
    ("lenet300", 1, 28),
    ("lenet300", 1, 8),
    ("conv2", 1, 28),
    ("conv2", 1, 8),
    ("conv4", 1, 28),
    ("conv4", 1, 8),
    ("conv6", 1, 8),
]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, c: int, size: int, classes: int = 10) -> nn.Module:
    return build_model(name, in_channels=c, num_classes=classes, image_size=size)


def test_names():
    assert model_names() == ["resnet20", "resnet56", "vgg16", "resnet18", "lenet300", "conv2", "conv4", "conv6"]


@pytest.mark.parametrize("name", list(COUNTS))
def test_param_counts_and_forward_shape(name):
    c, classes, size, exact = COUNTS[name]
    torch.manual_seed(0)
    model = build(name, c, size, classes)
    count = n_params(model)
    print(f"{name}: {count:,} parameters")
    assert count == exact
    expected_range = {
        "resnet20": (0.26e6, 0.28e6),
        "resnet56": (0.84e6, 0.87e6),
        "vgg16": (14.7e6 * 0.98, 14.7e6 * 1.02),
        "resnet18": (11.2e6 * 0.97, 11.2e6 * 1.03),
        "lenet300": (266_610, 266_610),
    }.get(name)
    if expected_range:
        assert expected_range[0] <= count <= expected_range[1]
    with torch.no_grad():
        out = model.eval()(torch.randn(2, c, size, size))
    assert out.shape == (2, classes)


@pytest.mark.parametrize("name,c,size", SMALL)
def test_channels_last_matches(name, c, size):
    torch.manual_seed(0)
    model = build(name, c, size)
    x = torch.randn(2, c, size, size)
    for train in (False, True):
        model.train(train)
        with torch.no_grad():
            ref = model(x)
            cl_model = build(name, c, size)
            cl_model.load_state_dict(model.state_dict())
            cl_model.to(memory_format=torch.channels_last).train(train)
            out = cl_model(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name,c,size", [("resnet20", 3, 32), ("lenet300", 1, 28), ("conv4", 1, 8)])
def test_seed_determines_weights(name, c, size):
    def weights(seed):
        torch.manual_seed(seed)
        return build(name, c, size).state_dict()

    a, b, other = weights(0), weights(0), weights(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], other[k]) for k in a)
    # BN starts at the identity.
    bn = [k for k in a if k.endswith("bn1.weight")]
    assert bn or name == "lenet300"
    for k in bn:
        assert torch.all(a[k] == 1)


@pytest.mark.parametrize("name,c,size", SMALL)
def test_backward_reaches_every_prunable_weight(name, c, size):
    torch.manual_seed(0)
    model = build(name, c, size).train()
    x = torch.randn(2, c, size, size).contiguous(memory_format=torch.channels_last)
    model(x).logsumexp(1).sum().backward()
    prunable = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert prunable
    for n, m in prunable:
        assert m.weight.grad is not None, n
        assert m.weight.grad.abs().sum() > 0, n


def test_readable_module_names():
    names = {n for n, m in build("resnet20", 3, 32).named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert {"conv1", "layer1.0.conv1", "layer2.0.shortcut.0", "fc"} <= names
    assert {n for n, m in build("lenet300", 1, 28).named_modules() if isinstance(m, nn.Linear)} == {"fc1", "fc2", "fc3"}


def test_unknown_model_is_user_error():
    with pytest.raises(UserError) as info:
        build("resnet999", 3, 32)
    message = str(info.value)
    assert "\n" not in message
    assert "resnet999" in message and "resnet20" in message


def test_too_small_image_is_user_error():
    with pytest.raises(UserError):
        build("vgg16", 1, 8)
    with pytest.raises(UserError):
        build("resnet20", 0, 32)


def test_width_scales_the_channels_of_the_models_that_have_one():
    narrow = build_model("conv4", in_channels=1, num_classes=10, image_size=28, width=0.25)
    convs = [m.out_channels for m in narrow.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [16, 16, 32, 32]
    assert narrow.fc1.in_features == 32 * 7 * 7
    assert narrow(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    # width 1 is the model as it was before width existed (its parameter count above)
    assert n_params(build_model("conv4", in_channels=1, num_classes=10, image_size=28, width=1.0)) == COUNTS["conv4"][3]


def test_a_width_for_a_model_without_one_is_user_error():
    with pytest.raises(UserError) as info:
        build_model("lenet300", in_channels=1, num_classes=10, image_size=28, width=0.5)
    message = str(info.value)
    assert "\n" not in message and "model.width" in message and "lenet300" in message
    assert "conv2, conv4, conv6" in message


def test_conv6_has_the_weights_of_frankle_and_carbins_conv6():
    with torch.device("meta"):
        model = build_model("conv6", in_channels=3, num_classes=10, image_size=32)
    assert sum(p.numel() for p in model.parameters() if p.dim() > 1) == 2_261_184  # their 2.26M (CIFAR-10)
