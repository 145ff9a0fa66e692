"""Magnitude pruning (and random pruning) of a fraction of the *remaining* weights: globally across the
prunable tensors, or layerwise (the same fraction of each tensor)."""
from __future__ import annotations

from typing import Literal

import torch

from prac.training.masks import Mask


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


Scope = Literal["global", "layerwise"]


def _prune(scores: dict[str, torch.Tensor], mask: Mask, rate: float, scope: Scope) -> Mask:
    if scope == "global":
        return _prune_lowest(scores, mask, rate)
    return {n: _prune_lowest({n: scores[n]}, {n: mask[n]}, rate)[n] for n in mask}


def magnitude_prune(weights: dict[str, torch.Tensor], mask: Mask, rate: float, scope: Scope = "global") -> Mask:
    """Magnitude pruning: the new mask is nested in `mask` and drops the smallest |w| among those kept,
    round(rate * remaining) of them globally, or of each tensor's remaining ones (layerwise)."""
    return _prune({n: weights[n].abs().float() for n in mask}, mask, rate, scope)


def random_prune(mask: Mask, rate: float, generator: torch.Generator, scope: Scope = "global") -> Mask:
    """Random pruning to the same per-round sparsity as magnitude pruning (a baseline)."""
    scores = {n: torch.rand(m.shape, generator=generator, device=generator.device).to(m.device) for n, m in mask.items()}
    return _prune(scores, mask, rate, scope)
