"""A researcher's own method, written outside prac-lth and added through its public API alone
(ARCHITECTURE.md, "Adding your own"): each round trains on the samples the round's sparse model finds easiest
(lowest cross-entropy), as many as PrAC's set holds. Loaded with PRAC_LTH_PLUGINS=lowest_loss (this folder on
PYTHONPATH) by tests/test_extension.py."""
from __future__ import annotations

import numpy as np

from prac.strategies.methods import METHODS, PRAC_SETTINGS, REWIND, Method
from prac.strategies.pruners import PRUNERS
from prac.strategies.selectors import SELECTORS, SelectionInputs, Selector


class LowestLoss(Selector):
    name = "lowest-loss"
    sized_like_prac = True  # takes inputs.size samples (its method's budget: its own CET ∪ CEP)
    reads_sparse_model = True

    def select(self, inputs: SelectionInputs) -> np.ndarray:
        probabilities = inputs.probabilities()
        loss = -np.log(np.clip(probabilities[np.arange(len(inputs.labels)), inputs.labels], 1e-12, None))
        chosen = np.zeros(len(loss), dtype=bool)
        chosen[np.argsort(loss, kind="stable")[:inputs.size]] = True
        return chosen


SELECTORS.register(LowestLoss())
METHODS.register(Method("lowest-loss", SELECTORS.get("lowest-loss"), PRUNERS.get("magnitude"), scales_schedule=True,
                        early_stop=True, ticket_start=REWIND, reads=PRAC_SETTINGS,
                        summary="the lowest-loss samples under the round's sparse model, as many as CET ∪ CEP"))
