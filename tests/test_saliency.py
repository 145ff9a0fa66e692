"""The iterative pruning baselines' scores (prac.training.saliency) against small cases computed by hand:
closed forms of a linear classifier's gradient and Hessian under cross-entropy, and a two-layer linear
network's synaptic flow."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from prac.training.masks import full_mask, kept_count, is_nested, layer_types
from prac.training.pruning import PruneRule, magnitude_prune, prune_count
from prac.training.saliency import grasp_scores, snip_scores, synflow_prune, synflow_scores

W = np.array([[0.5, -1.0, 0.25], [-0.75, 0.3, 1.5]])  # 2 classes x 3 features
X = np.array([1.0, 2.0, -1.0])
Y = 1


def _linear(weights: np.ndarray) -> nn.Linear:
    layer = nn.Linear(weights.shape[1], weights.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights, dtype=torch.float32))
    return layer


def _softmax_grad() -> tuple[np.ndarray, np.ndarray]:
    logits = W @ X
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return p, np.outer(p - np.eye(2)[Y], X)  # ∂CE/∂W = (p − e_y) xᵀ


def _scores(fn, layer):
    return fn(layer, full_mask(layer), torch.tensor(X[None], dtype=torch.float32),
              torch.tensor([Y]))["weight"].numpy()


def test_snip_is_the_gradient_times_the_weight_in_absolute_value():
    _, grad = _softmax_grad()
    np.testing.assert_allclose(_scores(snip_scores, _linear(W)), np.abs(grad * W), rtol=1e-5)


def test_grasp_is_the_weight_times_the_hessian_gradient_product():
    p, grad = _softmax_grad()
    # For a linear classifier, H g = ((diag p − p pᵀ) G x) xᵀ with G = ∂CE/∂W.
    hessian_grad = np.outer((np.diag(p) - np.outer(p, p)) @ grad @ X, X)
    np.testing.assert_allclose(_scores(grasp_scores, _linear(W)), W * hessian_grad, rtol=1e-4, atol=1e-7)


def _two_layers(first: np.ndarray, second: np.ndarray) -> nn.Sequential:
    return nn.Sequential(_linear(first), _linear(second))


def test_synflow_is_the_weight_times_the_paths_through_it():
    first = np.array([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25]])  # 3 hidden x 2 inputs
    second = np.array([[2.0, -1.0, 0.5]])  # 1 output x 3 hidden
    net = _two_layers(first, second)
    scores = synflow_scores(net, full_mask(net), (2,))
    # R = 1ᵀ|W2||W1|1: a first-layer weight carries |w|·|W2|'s column into its unit; a second-layer one
    # |w|·the sum of its unit's |W1| row.
    np.testing.assert_allclose(scores["0.weight"].numpy(), np.abs(first) * np.abs(second).sum(axis=0)[:, None])
    np.testing.assert_allclose(scores["1.weight"].numpy(), np.abs(second) * np.abs(first).sum(axis=1)[None, :])
    assert net[0].weight[0, 1].item() == -2.0  # the caller's network keeps its signs


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_iterative_synflow_removes_what_one_prune_would_and_no_more(scope):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 10))
    mask = full_mask(net)
    new = synflow_prune(net, mask, PruneRule.uniform(mask, 0.2, scope), (20,), iterations=10)
    assert is_nested(new, mask)
    if scope == "global":
        assert kept_count(mask) - kept_count(new) == prune_count(kept_count(mask), 0.2)
    else:
        for name in mask:
            assert int(mask[name].sum() - new[name].sum()) == prune_count(int(mask[name].sum()), 0.2)


def test_iterative_synflow_keeps_every_layer_where_magnitudes_empty_one():
    # SynFlow's point (its paper's layer collapse): a layer of tiny weights is emptied by magnitudes at a high
    # rate, not by the synaptic flow re-scored as it prunes (each layer's scores sum to the same flow).
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(8, 64, bias=False), nn.Linear(64, 8, bias=False))
    with torch.no_grad():
        net[1].weight.mul_(1e-3)
    mask = full_mask(net)
    weights = {name: p.detach() for name, p in net.named_parameters()}
    assert int(magnitude_prune(weights, mask, 0.9)["1.weight"].sum()) == 0  # the collapse the case sets up
    new = synflow_prune(net, mask, 0.9, (8,), iterations=20)
    assert all(int(m.sum()) > 0 for m in new.values()), {n: int(m.sum()) for n, m in new.items()}


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_iterative_synflow_prunes_each_layer_type_at_its_own_rate(scope):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 10))
    mask = full_mask(net)
    rule = PruneRule(layer_types(net), {"conv": 0.5, "linear": 0.3, "output": 0.0}, scope)
    new = synflow_prune(net, mask, rule, (20,), iterations=10)
    assert is_nested(new, mask) and bool(new["4.weight"].all())  # the output layer at rate 0 stays dense
    hidden = ["0.weight", "2.weight"]
    if scope == "global":
        kept = sum(int(mask[n].sum()) for n in hidden)
        assert kept - sum(int(new[n].sum()) for n in hidden) == prune_count(kept, 0.3)
    else:
        for name in hidden:
            assert int(mask[name].sum() - new[name].sum()) == prune_count(int(mask[name].sum()), 0.3)
