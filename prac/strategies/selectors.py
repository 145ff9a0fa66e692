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
from prac.training.selection import el2n, entropy, highest_scores, random_subset
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
    early_scores: np.ndarray | None  # the selector's early_score of each sample, if it has one
    probabilities: Callable[[], np.ndarray]  # round r's best sparse model on D0 (eval mode), computed when called
    # At the prac run's budget (prac.imp.budget): how many samples that run's round r+1 trained on, and its PrAC
    # set of round r (bool over D0, read when called); None otherwise.
    budget_size: int | None = None
    budget_set: Callable[[], np.ndarray] | None = None

    @property
    def prac_size(self) -> int:
        """|CET ∪ CEP| of this run's round r."""
        return int((self.in_cet | self.in_cep).sum())

    @property
    def size(self) -> int:
        """How many samples a selector sized like PrAC takes: the prac run's at equal budget, else prac_size."""
        return self.prac_size if self.budget_size is None else self.budget_size


class Selector:
    name: ClassVar[str]
    trains_on_all: ClassVar[bool] = False  # every round on all of D0: no training set is read back
    uses_cep: ClassVar[bool] = False  # its set reads CEP: the dense predictions are computed
    sized_like_prac: ClassVar[bool] = False  # takes `inputs.size` samples: |CET ∪ CEP|, or the prac run's count
    reads_budget_set: ClassVar[bool] = False  # trains on the prac run's PrAC sets (`inputs.budget_set`)
    reads_transfer: ClassVar[bool] = False  # reads another run's PrAC sets (config.transfer)
    reads_sparse_model: ClassVar[bool] = False  # calls inputs.probabilities (one pass over D0 a round)
    # A score of each D0 sample under the dense model early in training (prac.imp.imp_steps.early_state), computed
    # once with round 0 (a column of dense_predictions.parquet, this name) and handed back as `early_scores`.
    early_score: ClassVar[str | None] = None

    def score_early(self, probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The early_score of each sample from the early dense model's softmax outputs."""
        raise NotImplementedError

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


class PracRunSet(Selector):
    """The PrAC set the prac run of the same settings and seed chose in that round (prac.imp.budget): its data,
    at its budget, so that only the pruning criterion differs."""

    name = "prac-run-set"
    reads_budget_set = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        return inputs.budget_set()


class RandomSubset(Selector):
    """`inputs.size` random samples of D0 (a draw of its own each round)."""

    name = "random-subset"
    sized_like_prac = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        generator = np.random.default_rng(seed_for(inputs.config.seed, "random-subset", inputs.round_index))
        return random_subset(len(inputs.in_cet), inputs.size, generator)


class _HighestEarlyScores(Selector):
    sized_like_prac = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        if inputs.early_scores is None:
            raise ValueError(f"{self.name} needs the {self.early_score} scores of round 0")
        return highest_scores(inputs.early_scores, inputs.size)


class El2nSubset(_HighestEarlyScores):
    """The `inputs.size` samples of highest EL2N under the dense model early in training (Paul et al. 2021)."""

    name = "el2n-subset"
    early_score = "el2n"

    def score_early(self, probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return el2n(probabilities, labels)


class SvpSubset(_HighestEarlyScores):
    """Selection via proxy (Coleman et al. 2020): the `inputs.size` samples most uncertain (highest predictive
    entropy) under a cheap proxy, the dense model trained only to its rewind point (prac.imp.imp_steps.early_state)
    rather than to the end; one ranking for every round, as EL2N's."""

    name = "svp-subset"
    early_score = "proxy_entropy"

    def score_early(self, probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return entropy(probabilities)


class EntropySubset(Selector):
    """Active learning by maximum entropy (Lewis & Gale 1994): the `inputs.size` samples of highest predictive
    entropy under round r's own sparse model, ranked again every round."""

    name = "entropy-subset"
    sized_like_prac = True
    reads_sparse_model = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        return highest_scores(entropy(inputs.probabilities()), inputs.size)


SELECTORS: Registry[Selector] = Registry("selector")
for _selector in (AllOfD0(), CetOnly(), PracSet(), Transferred(), PracRunSet(), RandomSubset(), El2nSubset(),
                  SvpSubset(), EntropySubset()):
    SELECTORS.register(_selector)
