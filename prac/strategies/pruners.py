"""Pruners: the next mask from a round's weights (OpenLTH's pruning strategies). A method names one
(prac.strategies.methods). To add a criterion: subclass Pruner, name it, `PRUNERS.register(YourPruner())`
(ARCHITECTURE.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from prac.settings.config import ExperimentConfig
from prac.training.masks import Mask
from prac.training.pruning import magnitude_prune, random_prune
from prac.registry import Registry
from prac.training.round_types import StateDict
from prac.seeds import seed_for


@dataclass(frozen=True)
class PruneInputs:
    """What a pruner may read: round r's weights (last, or where early stop fired) and the mask they trained
    under, on the training device; the new mask goes there too."""

    config: ExperimentConfig
    round_index: int
    weights: StateDict
    mask: Mask


class Pruner:
    name: ClassVar[str]

    def prune(self, inputs: PruneInputs) -> Mask:
        """A mask removing config.prune.rate of the weights still in `inputs.mask` (its scope: global or
        per layer)."""
        raise NotImplementedError


class Magnitude(Pruner):
    """The smallest |w| go (IMP)."""

    name = "magnitude"

    def prune(self, inputs: PruneInputs) -> Mask:
        prune = inputs.config.prune
        return magnitude_prune({n: inputs.weights[n] for n in inputs.mask}, inputs.mask, prune.rate, prune.scope)


class Random(Pruner):
    """Weights drawn at random (at IMP's rates): the draws come from a CPU generator, so a seed gives the same
    mask on any device."""

    name = "random"

    def prune(self, inputs: PruneInputs) -> Mask:
        config = inputs.config
        generator = torch.Generator().manual_seed(seed_for(config.seed, "random-prune", inputs.round_index))
        return random_prune(inputs.mask, config.prune.rate, generator, config.prune.scope)


PRUNERS: Registry[Pruner] = Registry("pruner")
for _pruner in (Magnitude(), Random()):
    PRUNERS.register(_pruner)
