"""Selectors: what round r+1 trains on, chosen after round r's stages (DeepCore's shape: each rule one class
with one `select()`). A method names one (prac.strategies.methods). To add a rule: subclass Selector, set its name and
what it needs, and `SELECTORS.register(YourSelector())` (ARCHITECTURE.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from prac.settings.config import ExperimentConfig
from prac.registry import Registry
from prac.seeds import seed_for
from prac.training.selection import highest_scores, random_subset
from prac.strategies.transfer import check_source, transferred_set


@dataclass(frozen=True)
class SelectionInputs:
    """What a selector may read once round r is done; arrays are over D0 in its order."""

    config: ExperimentConfig
    round_index: int
    in_cet: np.ndarray  # bool: forgotten in round r (samples round r did not train on are not in it)
    in_cep: np.ndarray  # bool: the dense and round r's sparse model disagree (all False if not computed)
    train_index: np.ndarray  # int64: each D0 sample's row in the dataset
    labels: np.ndarray  # int64
    el2n_scores: np.ndarray | None  # the dense model's EL2N early in training, for selectors that ask for it
    probabilities: Callable[[], np.ndarray]  # round r's best sparse model on D0 (eval mode), computed when called

    @property
    def prac_size(self) -> int:
        """|CET ∪ CEP|: the size the equal-budget selectors take."""
        return int((self.in_cet | self.in_cep).sum())


class Selector:
    name: ClassVar[str]
    trains_on_all: ClassVar[bool] = False  # every round on all of D0: no training set is read back
    uses_cep: ClassVar[bool] = False  # reads CEP (for its set or its size): the dense predictions are computed
    needs_el2n: ClassVar[bool] = False  # reads el2n_scores
    reads_transfer: ClassVar[bool] = False  # reads another run's PrAC sets (config.transfer)

    def check_inputs(self, config: ExperimentConfig) -> None:
        """What the rule reads besides the run itself, checked before anything trains (one-line UserError)."""

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        """The next round's training set: bool over D0."""
        raise NotImplementedError


class AllOfD0(Selector):
    name = "all"
    trains_on_all = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        return np.ones_like(inputs.in_cet)


class CetOnly(Selector):
    """The forgotten samples alone (the paper's ablation of CEP)."""

    name = "cet"

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        return inputs.in_cet.copy()


class PracSet(Selector):
    """CET ∪ CEP: the pruning-aware critical set."""

    name = "prac"
    uses_cep = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        return inputs.in_cet | inputs.in_cep


class Transferred(Selector):
    """The PrAC set another run (config.transfer.source) chose in the same round."""

    name = "transfer"
    reads_transfer = True

    def check_inputs(self, config: ExperimentConfig) -> None:
        check_source(config)

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        return transferred_set(inputs.config, inputs.round_index, inputs.train_index)


class RandomSubset(Selector):
    """As many random samples of D0 as CET ∪ CEP holds (a draw of its own each round)."""

    name = "random-subset"
    uses_cep = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        generator = np.random.default_rng(seed_for(inputs.config.seed, "random-subset", inputs.round_index))
        return random_subset(len(inputs.in_cet), inputs.prac_size, generator)


class El2nSubset(Selector):
    """As many samples as CET ∪ CEP holds, the highest EL2N scores of the dense model (Paul et al. 2021)."""

    name = "el2n-subset"
    uses_cep = True
    needs_el2n = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        if inputs.el2n_scores is None:
            raise ValueError("el2n-subset needs the EL2N scores of round 0")
        return highest_scores(inputs.el2n_scores, inputs.prac_size)


SELECTORS: Registry[Selector] = Registry("selector")
for _selector in (AllOfD0(), CetOnly(), PracSet(), Transferred(), RandomSubset(), El2nSubset()):
    SELECTORS.register(_selector)
