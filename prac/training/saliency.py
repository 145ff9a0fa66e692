"""The scores of the pruning-at-initialisation criteria, used here iteratively (after each round's training,
like IMP's magnitudes): SNIP (Lee et al. 2018), GraSP (Wang et al. 2020) and SynFlow (Tanaka et al. 2020).
Each gives a score per prunable weight with the convention of prac.training.pruning: the lowest go.
Scores are taken in float32 (float64 for SynFlow, whose products of weights overflow otherwise) and in eval
mode: the weights scored are a trained round's, whose batch-norm statistics are the network's own.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from prac.training.masks import Mask, kept_count
from prac.training.pruning import Pool, PruneRule, as_rule, prune_count, remove_lowest

# SynFlow prunes over this many iterations (its paper's 100), each re-scoring the network as pruned so far
# (that is what keeps it from collapsing a layer): the round's fraction comes off on an exponential schedule.
SYNFLOW_ITERATIONS = 100


def _weights(model: nn.Module, mask: Mask) -> dict[str, nn.Parameter]:
    params = dict(model.named_parameters())
    return {name: params[name] for name in mask}


def snip_scores(model: nn.Module, mask: Mask, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """SNIP's connection sensitivity |∂L/∂w ⊙ w| (the loss's change when a weight's connection is cut), the
    mean cross-entropy over the batch."""
    weights = _weights(model, mask)
    loss = F.cross_entropy(model(inputs).float(), targets)
    grads = torch.autograd.grad(loss, list(weights.values()))
    return {name: (grad * w).abs().detach() for (name, w), grad in zip(weights.items(), grads)}


def grasp_scores(model: nn.Module, mask: Mask, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """GraSP's S(−w) = −w ⊙ Hg, returned negated (w ⊙ Hg): GraSP removes the weights of highest S, those
    whose removal reduces the gradient flow least (g: the loss's gradient, H its Hessian, both over the prunable
    weights; Hg as the gradient of gᵀ·stop_gradient(g))."""
    weights = _weights(model, mask)
    loss = F.cross_entropy(model(inputs).float(), targets)
    grads = torch.autograd.grad(loss, list(weights.values()), create_graph=True)
    flow = sum((grad * grad.detach()).sum() for grad in grads)
    hessian_grads = torch.autograd.grad(flow, list(weights.values()))
    return {name: (w * hg).detach() for (name, w), hg in zip(weights.items(), hessian_grads)}


def _positive_copy(model: nn.Module) -> nn.Module:
    """A float64 copy of `model` in eval mode with every parameter and buffer made positive (SynFlow's |W|)."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    return net


def _synaptic_saliency(positive: nn.Module, mask: Mask, input_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    weights = _weights(positive, mask)
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=next(positive.parameters()).device)
    grads = torch.autograd.grad(positive(ones).sum(), list(weights.values()))
    return {name: (grad * w).abs().detach() for (name, w), grad in zip(weights.items(), grads)}


def synflow_scores(model: nn.Module, mask: Mask, input_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """SynFlow's synaptic saliency |∂R/∂w ⊙ w| with R = 1ᵀ(∏|W|)1, the output sum of the network with every
    parameter made positive on an input of ones: no data. `model` is left as it was."""
    return _synaptic_saliency(_positive_copy(model), mask, input_shape)


def _kept_targets(mask: Mask, pools: list[Pool], iterations: int) -> list[list[int]]:
    """How many weights each pool keeps after each iteration: kept·(1−rate)^(k/n), ending exactly where one prune
    at its rate ends (prune_count's rounding)."""
    def schedule(kept: int, rate: float) -> list[int]:
        final = kept - prune_count(kept, rate)
        return [max(final, round(kept * (1 - rate) ** (k / iterations))) for k in range(1, iterations)] + [final]

    per_pool = [schedule(sum(int(mask[n].sum()) for n in names), rate) for names, rate in pools]
    return [[steps[k] for steps in per_pool] for k in range(iterations)]


def synflow_prune(model: nn.Module, mask: Mask, rule: PruneRule | float, input_shape: tuple[int, ...],
                  iterations: int = SYNFLOW_ITERATIONS) -> Mask:
    """The next mask by SynFlow: `iterations` times, score the network as pruned so far and remove the lowest
    of each of the rule's pools down to that iteration's target; in the end each pool has lost what one prune
    at its rate removes."""
    net = _positive_copy(model)  # once: each iteration only zeroes what it pruned
    original = {name: w.detach().clone() for name, w in _weights(net, mask).items()}
    current = {name: m.clone() for name, m in mask.items()}
    pools = as_rule(mask, rule).pools(mask)
    for targets in _kept_targets(mask, pools, iterations):
        with torch.no_grad():
            for name, w in _weights(net, mask).items():
                w.copy_(original[name] * current[name])
        scores = _synaptic_saliency(net, current, input_shape)
        for (names, _), target in zip(pools, targets):
            pool = {name: current[name] for name in names}
            current.update(remove_lowest(scores, pool, kept_count(pool) - target))
    return current
