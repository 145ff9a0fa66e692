"""Masks and pruning: global magnitude pruning (checked against numpy and torch.nn.utils.prune),
random pruning, the choice of prunable weights, and MaskEnforcer during SGD training."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

from prac.training.masks import (
    MaskEnforcer,
    full_mask,
    hamming_distance,
    is_nested,
    kept_count,
    layer_sparsities,
    layer_types,
    mask_similarity,
    prunable_parameters,
    sparsity,
    total_count,
    type_sparsities,
)
from prac.models import build_model
from prac.training.pruning import PruneRule, magnitude_prune, prune_by_scores, prune_count, random_prune



pytestmark = pytest.mark.usefixtures("one_thread")


SHAPES = {"a.weight": (7, 3, 3, 3), "b.weight": (13, 11), "c.weight": (5,)}


def random_weights(seed: int) -> dict[str, torch.Tensor]:
    """Tie-free random weights (continuous draws; ties have probability ~0, checked)."""
    g = torch.Generator().manual_seed(seed)
    weights = {n: torch.randn(s, generator=g, dtype=torch.float64).float() for n, s in SHAPES.items()}
    flat = torch.cat([w.abs().flatten() for w in weights.values()])
    assert flat.unique().numel() == flat.numel()
    return weights


def ones_mask() -> dict[str, torch.Tensor]:
    return {n: torch.ones(s, dtype=torch.bool) for n, s in SHAPES.items()}


def numpy_magnitude_prune(weights, mask, rate):
    """Independent reference: sort |w| of the kept weights of all tensors together, drop the lowest."""
    names = list(mask)
    abs_w = np.concatenate([weights[n].abs().numpy().ravel() for n in names])
    kept = np.concatenate([mask[n].numpy().ravel() for n in names])
    kept_pos = np.flatnonzero(kept)
    count = round(rate * kept_pos.size)  # torch.nn.utils.prune's rounding
    drop = kept_pos[np.argsort(abs_w[kept_pos], kind="stable")[:count]]
    new = kept.copy()
    new[drop] = False
    out, offset = {}, 0
    for n in names:
        size = mask[n].numel()
        out[n] = new[offset:offset + size].reshape(mask[n].shape)
        offset += size
    return out


# --- mask basics -------------------------------------------------------------------------------

def test_mask_counts_sparsity_nesting_and_hamming():
    a = {"x": torch.tensor([True, True, False, True]), "y": torch.tensor([[True, False], [False, False]])}
    b = {"x": torch.tensor([True, False, False, True]), "y": torch.tensor([[False, False], [False, False]])}
    assert kept_count(a) == 4 and kept_count(b) == 2
    assert total_count(a) == 8
    assert sparsity(a) == pytest.approx(0.5)
    assert sparsity(b) == pytest.approx(0.75)
    assert is_nested(b, a) and not is_nested(a, b)
    assert is_nested(a, a)
    assert not is_nested(b, {"x": a["x"]})  # different layers: not nested
    assert hamming_distance(a, b) == 2 and hamming_distance(b, a) == 2 and hamming_distance(a, a) == 0
    assert dict(layer_sparsities(a)) == pytest.approx({"x": 0.25, "y": 0.75})


def test_full_mask_keeps_everything():
    model = build_model("conv2", in_channels=1, num_classes=10, image_size=8)
    mask = full_mask(model)
    assert sparsity(mask) == 0.0
    assert all(m.dtype == torch.bool and m.all() for m in mask.values())
    params = dict(model.named_parameters())
    assert all(mask[n].shape == params[n].shape for n in mask)


# --- prunable parameters -----------------------------------------------------------------------

def test_prunable_parameters_are_every_conv_and_linear_weight():
    model = build_model("conv2", in_channels=1, num_classes=10, image_size=8)
    convs = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    linears = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    assert len(convs) == 2 and len(linears) == 3
    prunable = prunable_parameters(model)
    assert set(prunable) == convs | linears
    assert "features.conv1.weight" in prunable  # the first conv is prunable
    params = dict(model.named_parameters())
    assert all(prunable[n] is params[n] for n in prunable)  # the parameters themselves
    assert not any(n.endswith("bias") or ".bn" in n for n in prunable)


def test_prunable_parameters_first_conv_of_resnet_and_mlp():
    resnet = build_model("resnet20", in_channels=3, num_classes=10, image_size=32)
    prunable = prunable_parameters(resnet)
    n_convs = sum(isinstance(m, nn.Conv2d) for m in resnet.modules())
    assert len(prunable) == n_convs + 1  # and its classifier
    first_conv = next(n for n, m in resnet.named_modules() if isinstance(m, nn.Conv2d))
    assert f"{first_conv}.weight" in prunable
    mlp = build_model("lenet300", in_channels=1, num_classes=10, image_size=8)
    assert len(prunable_parameters(mlp)) == 3


def test_prunable_parameters_of_a_bare_layer():
    conv = nn.Conv2d(1, 2, 3)
    assert list(prunable_parameters(conv)) == ["weight"]


@pytest.mark.parametrize("name, size, output, hidden", [
    ("lenet300", 28, "fc3.weight", ["fc1.weight", "fc2.weight"]),
    ("conv2", 8, "fc3.weight", ["fc1.weight", "fc2.weight"]),
    ("conv4", 8, "fc3.weight", ["fc1.weight", "fc2.weight"]),
    ("conv6", 8, "fc3.weight", ["fc1.weight", "fc2.weight"]),
    ("resnet20", 32, "fc.weight", []),
    ("vgg16", 32, "fc.weight", []),
])
def test_layer_types_name_the_output_layer_and_the_hidden_ones(name, size, output, hidden):
    with torch.device("meta"):
        model = build_model(name, in_channels=1, num_classes=10, image_size=size)
    types = layer_types(model)
    assert list(types) == list(prunable_parameters(model))
    assert [n for n, t in types.items() if t == "output"] == [output]
    assert [n for n, t in types.items() if t == "linear"] == hidden
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert [n for n, t in types.items() if t == "conv"] == [f"{n}.weight" for n in convs]


# --- magnitude pruning -------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.2, 0.5, 0.37])
def test_magnitude_prune_matches_numpy_sort_over_rounds(rate):
    mask = ones_mask()
    for round_index in range(5):
        weights = random_weights(100 + round_index)  # weights change between rounds, as in IMP
        remaining = kept_count(mask)
        new = magnitude_prune(weights, mask, rate)
        assert kept_count(new) == remaining - round(rate * remaining)
        assert is_nested(new, mask)
        expected = numpy_magnitude_prune(weights, mask, rate)
        for n in mask:
            assert new[n].dtype == torch.bool and new[n].shape == mask[n].shape
            np.testing.assert_array_equal(new[n].numpy(), expected[n], err_msg=f"{n} round {round_index}")
        mask = new


def test_magnitude_prune_is_global_not_per_layer():
    # Layer "small" holds only tiny weights: global pruning takes all of them first.
    weights = {"big.weight": torch.tensor([5.0, -4.0, 3.0, 2.5, -6.0, 7.0]),
               "small.weight": torch.tensor([0.1, -0.2, 0.3])}
    mask = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    new = magnitude_prune(weights, mask, 4 / 9)
    assert not new["small.weight"].any()
    assert new["big.weight"].tolist() == [True, True, True, False, True, True]


def test_magnitude_prune_ignores_already_pruned_weights():
    # A pruned weight with a large value stays pruned and does not count towards the rate.
    weights = {"w": torch.tensor([100.0, 1.0, 2.0, 3.0, 4.0, 5.0])}
    mask = {"w": torch.tensor([False, True, True, True, True, True])}
    new = magnitude_prune(weights, mask, 0.4)  # 2 of the 5 kept
    assert new["w"].tolist() == [False, False, False, True, True, True]


def test_magnitude_prune_uses_absolute_value():
    weights = {"w": torch.tensor([-9.0, 0.5, -0.25, 8.0])}
    new = magnitude_prune(weights, {"w": torch.ones(4, dtype=torch.bool)}, 0.5)
    assert new["w"].tolist() == [True, False, False, True]


def test_magnitude_prune_does_not_modify_its_inputs():
    weights = random_weights(3)
    mask = ones_mask()
    before_w = {n: w.clone() for n, w in weights.items()}
    magnitude_prune(weights, mask, 0.3)
    assert all(m.all() for m in mask.values())
    assert all(torch.equal(weights[n], before_w[n]) for n in weights)


def test_prune_count_rounds_like_torch():
    assert prune_count(10, 0.2) == 2
    assert prune_count(13, 0.2) == 3  # 2.6
    assert prune_count(12, 0.2) == 2  # 2.4
    assert prune_count(1, 0.2) == 0


@pytest.mark.parametrize("fresh_weights", [False, True])
def test_magnitude_prune_equals_torch_global_unstructured_round_after_round(fresh_weights):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 4, 3), nn.Flatten(), nn.Linear(4, 5))
    modules = [model[0], model[2], model[4]]
    names = ["0.weight", "2.weight", "4.weight"]
    mask = {n: torch.ones_like(m.weight, dtype=torch.bool) for n, m in zip(names, modules)}
    g = torch.Generator().manual_seed(1)
    rate = 0.2
    expected_kept = kept_count(mask)
    new_values = [torch.randn(m.weight.shape, generator=g) for m in modules]
    for round_index in range(4):
        if fresh_weights:  # new tie-free weights each round, as after a round of training
            new_values = [torch.randn(m.weight.shape, generator=g) for m in modules]
        with torch.no_grad():
            for m, v in zip(modules, new_values):
                (m.weight_orig if round_index else m.weight).copy_(v)
            model(torch.zeros(1, 3, 5, 5))  # the forward pre-hook recomputes weight = orig * mask
        torch_prune.global_unstructured([(m, "weight") for m in modules],
                                        pruning_method=torch_prune.L1Unstructured, amount=rate)
        ours = magnitude_prune(dict(zip(names, new_values)), mask, rate)
        for n, m in zip(names, modules):
            assert torch.equal(ours[n], m.weight_mask.bool()), f"round {round_index} {n}"
        expected_kept -= round(rate * expected_kept)  # torch prunes `amount` of the remaining units
        assert kept_count(ours) == expected_kept
        mask = ours


# --- random pruning ----------------------------------------------------------------------------

def test_random_prune_counts_nesting_and_determinism():
    rate = 0.2
    mask = ones_mask()
    for _ in range(5):
        remaining = kept_count(mask)
        new = random_prune(mask, rate, torch.Generator().manual_seed(7))
        again = random_prune(mask, rate, torch.Generator().manual_seed(7))
        other = random_prune(mask, rate, torch.Generator().manual_seed(8))
        assert kept_count(new) == remaining - round(rate * remaining)
        assert is_nested(new, mask)
        assert all(torch.equal(new[n], again[n]) for n in new)
        assert kept_count(other) == kept_count(new)
        assert hamming_distance(new, other) > 0  # a different seed prunes different weights
        mask = new


def test_random_prune_is_not_magnitude_pruning():
    weights = random_weights(5)
    mask = ones_mask()
    by_magnitude = magnitude_prune(weights, mask, 0.5)
    at_random = random_prune(mask, 0.5, torch.Generator().manual_seed(0))
    assert hamming_distance(by_magnitude, at_random) > 0


# --- MaskEnforcer ------------------------------------------------------------------------------

def _sgd_steps(model, optimizer, enforcer, data, steps, *, apply_after_step=True):
    images, labels = data
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        if enforcer is not None:
            enforcer.zero_pruned_gradients()
        optimizer.step()
        if enforcer is not None and apply_after_step:
            enforcer.apply_to_weights()


@pytest.mark.parametrize("channels_last", [False, True])
def test_mask_enforcer_keeps_pruned_weights_exactly_zero(channels_last):
    torch.manual_seed(0)
    model = build_model("conv2", in_channels=1, num_classes=10, image_size=8)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    data = (torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    # Dense steps first, so that the momentum buffers of soon-pruned weights are non-zero.
    _sgd_steps(model, optimizer, None, data, 2)
    weights = {n: p.detach() for n, p in prunable_parameters(model).items()}
    mask = random_prune(full_mask(model), 0.5, torch.Generator().manual_seed(0))
    enforcer = MaskEnforcer(model, mask)
    enforcer.apply_to_weights()
    before = {n: w.clone() for n, w in weights.items()}
    for n in mask:
        assert (weights[n][~mask[n]] == 0).all()
    _sgd_steps(model, optimizer, enforcer, data, 5)
    for n in mask:
        assert (weights[n][~mask[n]] == 0.0).all(), n
        kept = mask[n]
        changed = weights[n][kept] != before[n][kept]
        assert changed.float().mean() > 0.9, n  # the unpruned weights do train
    # Without re-applying the mask, momentum and weight decay would move pruned weights:
    # the check above is not vacuous.
    _sgd_steps(model, optimizer, enforcer, data, 1, apply_after_step=False)
    assert any((weights[n][~mask[n]] != 0).any() for n in mask)


def test_zeroed_gradients_keep_pruned_weights_zero_under_an_optimizer_started_with_the_mask():
    # What train_round relies on: with the mask applied before the optimizer's first step, zeroing the
    # pruned gradients every step gives the same bits as also re-applying the mask after every step.
    data = (torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,)))
    states = []
    for apply_after_step in (True, False):
        torch.manual_seed(0)
        model = build_model("conv2", in_channels=1, num_classes=10, image_size=8)
        mask = random_prune(full_mask(model), 0.5, torch.Generator().manual_seed(0))
        enforcer = MaskEnforcer(model, mask)
        enforcer.apply_to_weights()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        _sgd_steps(model, optimizer, enforcer, data, 5, apply_after_step=apply_after_step)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        for n in mask:
            assert (dict(model.named_parameters())[n].detach()[~mask[n]] == 0).all(), n
    # Bit for bit, the signs of zeros included.
    assert all(torch.equal(states[0][k].view(torch.int32) if states[0][k].is_floating_point() else states[0][k],
                           states[1][k].view(torch.int32) if states[1][k].is_floating_point() else states[1][k])
               for k in states[0])


def test_mask_enforcer_zeroes_pruned_gradients_only():
    model = nn.Linear(4, 3, bias=False)
    mask = {"weight": torch.tensor([[True, False, True, False]] * 3)}
    enforcer = MaskEnforcer(model, mask)
    model(torch.randn(5, 4)).pow(2).sum().backward()
    grad_before = model.weight.grad.clone()
    enforcer.zero_pruned_gradients()
    assert (model.weight.grad[~mask["weight"]] == 0).all()
    assert torch.equal(model.weight.grad[mask["weight"]], grad_before[mask["weight"]])
    assert (grad_before[mask["weight"]] != 0).all()


def test_mask_enforcer_with_missing_gradients_and_unknown_names():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    mask = {"0.weight": torch.eye(3, dtype=torch.bool), "1.weight": torch.ones(2, 3, dtype=torch.bool)}
    enforcer = MaskEnforcer(model, mask)
    model[0].weight.grad = torch.ones(3, 3)  # 1.weight has no gradient
    enforcer.zero_pruned_gradients()
    assert torch.equal(model[0].weight.grad, torch.eye(3))
    with pytest.raises(ValueError, match="nope"):
        MaskEnforcer(model, {"nope.weight": torch.ones(1, dtype=torch.bool)})


def test_mask_similarity_is_intersection_over_union_of_kept_weights():
    a = {"w": torch.tensor([1, 1, 0, 0], dtype=torch.bool), "v": torch.tensor([1, 0], dtype=torch.bool)}
    b = {"w": torch.tensor([1, 0, 1, 0], dtype=torch.bool), "v": torch.tensor([1, 0], dtype=torch.bool)}
    assert mask_similarity(a, b) == pytest.approx(2 / 4)  # kept by both: w0, v0; by either: w0, w1, w2, v0
    assert mask_similarity(a, a) == 1.0
    empty = {k: torch.zeros_like(t) for k, t in a.items()}
    assert mask_similarity(empty, empty) == 1.0 and mask_similarity(a, empty) == 0.0


def test_layerwise_pruning_removes_the_rate_from_each_tensor():
    # Global pruning would take all four from the small-magnitude tensor "a"; layerwise takes half of each.
    weights = {"a": torch.tensor([0.1, 0.2, 0.3, 0.4]), "b": torch.tensor([5.0, 6.0, 7.0, 8.0])}
    mask = {n: torch.ones(4, dtype=torch.bool) for n in weights}
    assert magnitude_prune(weights, mask, 0.5)["a"].sum() == 0
    layerwise = magnitude_prune(weights, mask, PruneRule.uniform(mask, 0.5, "layerwise"))
    assert layerwise["a"].tolist() == [False, False, True, True]
    assert layerwise["b"].tolist() == [False, False, True, True]
    again = magnitude_prune(weights, layerwise, PruneRule.uniform(mask, 0.5, "layerwise"))  # of the remaining: nested
    assert again["a"].tolist() == [False, False, False, True] and is_nested(again, layerwise)
    randomly = random_prune(mask, PruneRule.uniform(mask, 0.5, "layerwise"), torch.Generator().manual_seed(0))
    assert [int(m.sum()) for m in randomly.values()] == [2, 2]


# --- per-layer-type rates ----------------------------------------------------------------------

TYPES = {"c1": "conv", "c2": "conv", "h": "linear", "out": "output"}


def typed_weights() -> dict[str, torch.Tensor]:
    """c1's weights are all smaller than c2's, and the linear ones smaller than both: a rule that pooled every
    tensor would prune the linear layer first, one that pooled each type takes c1's before c2's."""
    return {"c1": torch.arange(1, 9, dtype=torch.float32).view(2, 1, 2, 2) / 10,  # 0.1 .. 0.8
            "c2": torch.arange(1, 9, dtype=torch.float32).view(2, 1, 2, 2) + 10,  # 11 .. 18
            "h": torch.arange(1, 11, dtype=torch.float32).view(2, 5) / 100,  # 0.01 .. 0.10
            "out": torch.arange(1, 5, dtype=torch.float32).view(2, 2) / 1000}


def test_global_rates_pool_each_layer_type_and_prune_it_at_its_own_rate():
    weights = typed_weights()
    mask = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    rule = PruneRule(TYPES, {"conv": 0.5, "linear": 0.3, "output": 0.0})
    new = magnitude_prune(weights, mask, rule)
    # conv: round(0.5 x 16) = 8, all of them c1's (the type's smallest); linear: round(0.3 x 10) = 3
    assert int(new["c1"].sum()) == 0 and bool(new["c2"].all())
    assert new["h"].flatten().tolist() == [False] * 3 + [True] * 7
    assert bool(new["out"].all())  # rate 0: dense, the smallest weights of all kept
    assert sparsity(new) == pytest.approx(11 / 30)  # the dense type counts in the mask's sparsity
    again = magnitude_prune(weights, new, rule)  # of each type's remaining: round(0.5 x 8) = 4 of c2's
    assert int(again["c2"].sum()) == 4 and int(again["h"].sum()) == 7 - round(0.3 * 7) and is_nested(again, new)


def test_layerwise_rates_prune_each_tensor_at_its_types_rate():
    weights = typed_weights()
    mask = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    rule = PruneRule(TYPES, {"conv": 0.5, "linear": 0.3, "output": 0.25}, "layerwise")
    new = magnitude_prune(weights, mask, rule)
    assert {n: int(m.sum()) for n, m in new.items()} == {"c1": 4, "c2": 4, "h": 7, "out": 3}
    assert new["c2"].flatten().tolist() == [False] * 4 + [True] * 4  # each tensor's own smallest


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_every_criterion_removes_the_same_counts_per_type(scope):
    mask = {n: torch.ones_like(w, dtype=torch.bool) for n, w in typed_weights().items()}
    rule = PruneRule(TYPES, {"conv": 0.25, "linear": 0.5, "output": 0.0}, scope)
    by_magnitude = magnitude_prune(typed_weights(), mask, rule)
    at_random = random_prune(mask, rule, torch.Generator().manual_seed(0))
    by_scores = prune_by_scores({n: torch.rand(m.shape) for n, m in mask.items()}, mask, rule)
    for new in (at_random, by_scores):
        assert type_sparsities(new, TYPES) == type_sparsities(by_magnitude, TYPES)
        assert bool(new["out"].all())


def test_a_networks_types_at_the_lottery_ticket_rates():
    model = build_model("conv2", in_channels=1, num_classes=10, image_size=8)
    types = layer_types(model)
    weights = {n: p.detach() for n, p in prunable_parameters(model).items()}
    rule = PruneRule(types, {"conv": 0.1, "linear": 0.2, "output": 0.1})
    new = magnitude_prune(weights, full_mask(model), rule)
    for kind, rate in rule.rates.items():
        of_type = [n for n in types if types[n] == kind]
        total = sum(weights[n].numel() for n in of_type)
        assert sum(int(new[n].sum()) for n in of_type) == total - round(rate * total), kind


def test_type_sparsities_of_a_known_mask():
    mask = {"c1": torch.tensor([True, False, False, True]), "c2": torch.tensor([True, True, True, True]),
            "out": torch.tensor([[True, False], [True, True]])}
    types = {"c1": "conv", "c2": "conv", "out": "output"}
    by_type = type_sparsities(mask, types)
    assert by_type["conv"] == pytest.approx(2 / 8) and by_type["output"] == pytest.approx(1 / 4)
    assert np.isnan(by_type["linear"])  # no hidden linear layer
    assert sparsity(mask) == pytest.approx(3 / 12)
