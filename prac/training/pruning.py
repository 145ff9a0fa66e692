"""Pruning by scores (magnitudes, random draws, prac.training.saliency's criteria) of a fraction of the
*remaining* weights, at each layer type's rate (PruneRule): the tensors of one type pooled (global), or each
tensor alone (layerwise). The one rule every pruner, early stop's candidate mask and the bounds follow."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import torch

from prac.training.masks import Mask

Scope = Literal["global", "layerwise"]
Pool = tuple[list[str], float]  # tensors that lose their lowest scores together, and the fraction they lose


def prune_count(remaining: int, rate: float) -> int:
    # Same rounding as torch.nn.utils.prune (round(amount * n)), so our masks equal its masks.
    return round(rate * remaining)


@dataclass(frozen=True)
class PruneRule:
    """What one prune removes: from each pool, round(rate × its remaining weights) of the lowest scores. A pool is
    the tensors of one layer type together (global) or one tensor (layerwise), at its type's rate (0: the type
    stays as it is, its weights still in the mask)."""

    types: Mapping[str, str]  # tensor name -> its layer type (prac.training.masks.layer_types)
    rates: Mapping[str, float]  # layer type -> fraction of its remaining weights a prune removes
    scope: Scope = "global"

    @classmethod
    def uniform(cls, names: Iterable[str], rate: float, scope: Scope = "global") -> "PruneRule":
        """One rate, every tensor of one type: global pools them all (the rule of a network of one layer type)."""
        return cls({name: "all" for name in names}, {"all": rate}, scope)

    def pools(self, names: Iterable[str]) -> list[Pool]:
        """The pools of `names` (a mask's tensors, in its order), each with its rate."""
        if self.scope == "layerwise":
            return [([name], self.rates[self.types[name]]) for name in names]
        by_type: dict[str, list[str]] = {}
        for name in names:
            by_type.setdefault(self.types[name], []).append(name)
        return [(group, self.rates[kind]) for kind, group in by_type.items()]


def as_rule(mask: Mask, rule: PruneRule | float) -> PruneRule:
    """A bare rate: PruneRule.uniform over the mask's tensors, global."""
    return rule if isinstance(rule, PruneRule) else PruneRule.uniform(mask, rule)


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


def prune_by_scores(scores: dict[str, torch.Tensor], mask: Mask, rule: PruneRule | float) -> Mask:
    """The new mask, nested in `mask`, without the lowest-scored round(rate × remaining) kept weights of each of
    the rule's pools (a bare rate: of all the mask's together): the rule every criterion's scores are pruned by."""
    new: Mask = {}
    for names, rate in as_rule(mask, rule).pools(mask):
        pool = {n: mask[n] for n in names}
        new.update(remove_lowest(scores, pool, prune_count(sum(int(m.sum()) for m in pool.values()), rate)))
    return {n: new[n] for n in mask}


def magnitude_prune(weights: dict[str, torch.Tensor], mask: Mask, rule: PruneRule | float) -> Mask:
    """Magnitude pruning: the new mask is nested in `mask` and drops the smallest |w| among those kept,
    round(rate × remaining) of each of the rule's pools."""
    return prune_by_scores({n: weights[n].abs().float() for n in mask}, mask, rule)


def random_prune(mask: Mask, rule: PruneRule | float, generator: torch.Generator) -> Mask:
    """Random pruning to the same per-round sparsity as magnitude pruning (a baseline)."""
    scores = {n: torch.rand(m.shape, generator=generator, device=generator.device).to(m.device) for n, m in mask.items()}
    return prune_by_scores(scores, mask, rule)
