"""Global magnitude pruning (and random pruning) of a fraction of the *remaining* weights."""
from __future__ import annotations

import torch

from prac.masks import Mask


def prune_count(remaining: int, rate: float) -> int:
    # Same rounding as torch.nn.utils.prune (round(amount * n)), so our masks equal its masks.
    return round(rate * remaining)


def _prune_lowest(scores: dict[str, torch.Tensor], mask: Mask, rate: float) -> Mask:
    """Remove the `rate` fraction of kept weights with the lowest scores, globally across tensors."""
    names = list(mask)
    kept_scores = torch.cat([scores[n].detach().flatten()[mask[n].flatten()] for n in names])
    count = prune_count(kept_scores.numel(), rate)
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


def magnitude_prune(weights: dict[str, torch.Tensor], mask: Mask, rate: float) -> Mask:
    """Global magnitude pruning: the new mask is nested in `mask` and keeps exactly
    remaining - round(rate * remaining) weights, dropping the smallest |w| among those kept."""
    return _prune_lowest({n: weights[n].abs().float() for n in mask}, mask, rate)


def random_prune(mask: Mask, rate: float, generator: torch.Generator) -> Mask:
    """Random pruning to the same per-round sparsity as magnitude pruning (a baseline)."""
    scores = {n: torch.rand(m.shape, generator=generator, device=generator.device).to(m.device) for n, m in mask.items()}
    return _prune_lowest(scores, mask, rate)
