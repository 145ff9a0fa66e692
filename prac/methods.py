"""The methods a comparison runs, each described once: what a round r ≥ 1 trains on, whether its schedule
scales to that set, whether it stops early, how it prunes, and where its ticket starts from. The IMP loop,
the stages, the fingerprint and the records read these entries; nothing else tests a method's name.

Every method prunes its own training (random: at random), so a method is a way of choosing a round's
training set or its mask; round 0 (dense, all of D0, full schedule) is shared by all of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prac.errors import UserError

# The rules choosing the next round's training set from this round's CET and CEP (prac.selection).
NextSet = Literal["all", "prac", "cet", "random-subset", "el2n-subset", "transfer"]
# Every setting of config.prac; a method's `reads` names those that can change its result.
PRAC_SETTINGS = frozenset({"forget_threshold", "early_stop", "early_stop_eps", "early_stop_window",
                           "schedule_scaling", "min_epochs", "use_cep"})
_EARLY_STOP = frozenset({"early_stop", "early_stop_eps", "early_stop_window"})


@dataclass(frozen=True)
class Method:
    name: str
    next_set: NextSet
    scales_schedule: bool  # a round on a subset trains |D|/|D0| of the schedule (prac.schedule_scaling)
    early_stop: bool  # rounds ≥ 1 stop when the mask settles; round 0 is taken where early stop fired
    pruning: Literal["magnitude", "random"]
    ticket_start: Literal["rewind", "reinit"]  # the ticket m ⊙ θ: θ_rewind, or a fresh random initialisation
    reads: frozenset[str]  # the config.prac settings it reads (CET's forget_threshold: every method)
    summary: str

    def uses_cep(self, use_cep: bool) -> bool:
        """Whether it needs CEP (the dense model's predictions): for its set, or for the set's size."""
        return use_cep and self.next_set in ("prac", "random-subset", "el2n-subset")

    @property
    def reads_transfer(self) -> bool:
        return self.next_set == "transfer"

    @property
    def needs_el2n(self) -> bool:
        return self.next_set == "el2n-subset"

    @property
    def ticket_is_next_round(self) -> bool:
        """Training round r+1 *is* the retrain of mask r (all of D0, full schedule, no early stop, from
        θ_rewind): its ticket needs no retrain of its own."""
        return self.next_set == "all" and not self.early_stop and self.ticket_start == "rewind"


_SIZE_LIKE_PRAC = "each round trains on as many samples as its own PrAC set (CET ∪ CEP) holds"

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("prac", "prac", True, True, "magnitude", "rewind", PRAC_SETTINGS,
           "PrAC: each round trains on CET ∪ CEP of the last, its schedule scaled to the set, early stop"),
    Method("lt", "all", False, False, "magnitude", "rewind", frozenset({"forget_threshold"}),
           "the lottery ticket (IMP with rewinding): every round on all of D0 for the full schedule"),
    Method("random", "all", False, False, "random", "rewind", frozenset({"forget_threshold"}),
           "random pruning at lt's rates: the sparsity alone"),
    Method("random-reinit", "all", False, False, "magnitude", "reinit", frozenset({"forget_threshold"}),
           "lt's masks with a fresh random initialisation (OpenLTH's sanity check): the rewind weights' share"),
    Method("random-subset", "random-subset", True, True, "magnitude", "rewind", PRAC_SETTINGS,
           f"random samples of D0 where prac picks CET ∪ CEP: {_SIZE_LIKE_PRAC}"),
    Method("el2n-subset", "el2n-subset", True, True, "magnitude", "rewind", PRAC_SETTINGS,
           f"the highest-EL2N samples of the dense model early in training (Paul et al. 2021): {_SIZE_LIKE_PRAC}"),
    Method("cet-only", "cet", True, True, "magnitude", "rewind", PRAC_SETTINGS - {"use_cep"},
           "PrAC without CEP (the paper's ablation): each round on the forgotten samples of the last"),
    Method("transfer", "transfer", True, True, "magnitude", "rewind", PRAC_SETTINGS - {"use_cep"},
           "each round on the PrAC set another run (transfer.source) chose in that round, e.g. with another model"),
    Method("early-bird", "all", False, True, "magnitude", "rewind",
           _EARLY_STOP | {"forget_threshold"},
           "all of D0 with PrAC's early stop: the stopping rule without the data selection"),
)}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UserError(f"unknown method '{name}' (known: {', '.join(METHODS)})")
    return METHODS[name]
