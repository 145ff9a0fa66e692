"""Pruners: the next mask from a round's weights (OpenLTH's pruning strategies). A method names one
(prac.strategies.methods). To add a criterion: subclass Pruner, name it, `PRUNERS.register(YourPruner())`
(ARCHITECTURE.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from prac.settings.config import ExperimentConfig
from prac.training.masks import Mask
from prac.training.pruning import PruneRule, magnitude_prune, prune_by_scores, random_prune
from prac.registry import Registry
from prac.training.round_types import StateDict
from prac.training.saliency import grasp_scores, snip_scores, synflow_prune
from prac.seeds import seed_for


@dataclass(frozen=True)
class PruneInputs:
    """What a pruner may read: round r's weights (last, or where early stop fired) and the mask they trained
    under, on the training device (the new mask goes there too), and the rule of how much to remove: each layer
    type's rate of its remaining weights, pooled per type or per tensor (the config's, on this network)."""

    config: ExperimentConfig
    round_index: int
    weights: StateDict
    mask: Mask
    rule: PruneRule
    network: Callable[[], nn.Module] | None = None  # a model at `weights`, the mask applied, in eval mode
    score_batch: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None  # (inputs, labels) of round r's data


class Pruner:
    name: ClassVar[str]

    def prune(self, inputs: PruneInputs) -> Mask:
        """A mask nested in `inputs.mask` that removes what `inputs.rule` says: round(rate × remaining) of
        each of its pools (prac.training.pruning.prune_by_scores prunes any scores so)."""
        raise NotImplementedError


class Magnitude(Pruner):
    """The smallest |w| go (IMP)."""

    name = "magnitude"

    def prune(self, inputs: PruneInputs) -> Mask:
        return magnitude_prune({n: inputs.weights[n] for n in inputs.mask}, inputs.mask, inputs.rule)


class Random(Pruner):
    """Weights drawn at random (at IMP's rates): the draws come from a CPU generator, so a seed gives the same
    mask on any device."""

    name = "random"

    def prune(self, inputs: PruneInputs) -> Mask:
        generator = torch.Generator().manual_seed(seed_for(inputs.config.seed, "random-prune", inputs.round_index))
        return random_prune(inputs.mask, inputs.rule, generator)


class Snip(Pruner):
    """The lowest connection sensitivity |∂L/∂w ⊙ w| go (SNIP, Lee et al. 2018), scored on a batch of the
    round's data (prac.training.saliency)."""

    name = "snip"

    def prune(self, inputs: PruneInputs) -> Mask:
        batch, labels = inputs.score_batch()
        return _by_scores(inputs, snip_scores(inputs.network(), inputs.mask, batch, labels))


class Grasp(Pruner):
    """The weights whose removal reduces the gradient flow least go (GraSP, Wang et al. 2020: the highest
    −w ⊙ Hg), scored on a batch of the round's data."""

    name = "grasp"

    def prune(self, inputs: PruneInputs) -> Mask:
        batch, labels = inputs.score_batch()
        return _by_scores(inputs, grasp_scores(inputs.network(), inputs.mask, batch, labels))


class Synflow(Pruner):
    """The lowest synaptic flow go (SynFlow, Tanaka et al. 2020): no data, re-scored over its own iterations
    within the round (prac.training.saliency.SYNFLOW_ITERATIONS)."""

    name = "synflow"

    def prune(self, inputs: PruneInputs) -> Mask:
        input_shape = tuple(inputs.score_batch()[0].shape[1:])  # one sample's shape: SynFlow feeds ones
        return synflow_prune(inputs.network(), inputs.mask, inputs.rule, input_shape)


def _by_scores(inputs: PruneInputs, scores: dict[str, torch.Tensor]) -> Mask:
    return prune_by_scores(scores, inputs.mask, inputs.rule)


PRUNERS: Registry[Pruner] = Registry("pruner")
for _pruner in (Magnitude(), Random(), Snip(), Grasp(), Synflow()):
    PRUNERS.register(_pruner)
