"""Pruning by scores (magnitudes, random draws, prac.training.saliency's criteria) of a fraction of the
*remaining* weights: globally across the prunable tensors, or layerwise (the same fraction of each tensor)."""
from __future__ import annotations

from typing import Literal

import torch

from prac.training.masks import Mask


def prune_count(remaining: int, rate: float) -> int:
    # Same rounding as torch.nn.utils.prune (round(amount * n)), so our masks equal its masks.
    return round(rate * remaining)


def remove_lowest(scores: dict[str, torch.Tensor], mask: Mask, count: int) -> Mask:
    """Remove the `count` kept weights with the lowest scores, globally across the mask's tensors."""
    names = list(mask)
    kept_scores = torch.cat([scores[n].detach().flatten()[mask[n].flatten()] for n in names])
    new_flat = torch.cat([mask[n].flatten() for n in names]).clone()
    if count > 0:
        kept_positions = torch.nonzero(new_flat, as_tuple=True)[0]
        lowest = torch.topk(kept_scores, k=count, largest=False).indices
        new_flat[kept_positions[lowest]] = False
    out: Mask = {}
    offset = 0
    for n in names:
        size = mask[n].numel()
        out[n] = new_flat[offset:offset + size].view_as(mask[n])
        offset += size
    return out


def _prune_lowest(scores: dict[str, torch.Tensor], mask: Mask, rate: float) -> Mask:
    """Remove the `rate` fraction of kept weights with the lowest scores, globally across tensors."""
    return remove_lowest(scores, mask, prune_count(sum(int(mask[n].sum()) for n in mask), rate))


Scope = Literal["global", "layerwise"]


def prune_by_scores(scores: dict[str, torch.Tensor], mask: Mask, rate: float, scope: Scope) -> Mask:
    """The new mask, nested in `mask`, without the lowest-scored `rate` of its kept weights (round(rate *
    remaining)), globally or of each tensor's (layerwise): the rule every criterion's scores are pruned by."""
    if scope == "global":
        return _prune_lowest(scores, mask, rate)
    return {n: _prune_lowest({n: scores[n]}, {n: mask[n]}, rate)[n] for n in mask}


def magnitude_prune(weights: dict[str, torch.Tensor], mask: Mask, rate: float, scope: Scope = "global") -> Mask:
    """Magnitude pruning: the new mask is nested in `mask` and drops the smallest |w| among those kept,
    round(rate * remaining) of them globally, or of each tensor's remaining ones (layerwise)."""
    return prune_by_scores({n: weights[n].abs().float() for n in mask}, mask, rate, scope)


def random_prune(mask: Mask, rate: float, generator: torch.Generator, scope: Scope = "global") -> Mask:
    """Random pruning to the same per-round sparsity as magnitude pruning (a baseline)."""
    scores = {n: torch.rand(m.shape, generator=generator, device=generator.device).to(m.device) for n, m in mask.items()}
    return prune_by_scores(scores, mask, rate, scope)
