"""The methods a comparison runs, each described once: what a round r ≥ 1 trains on (a selector), how it
prunes (a pruner), whether its schedule scales to its set, whether it stops early, and where its ticket starts
from. The IMP loop, the stages, the fingerprint and the records read these entries; nothing tests a method's or
a strategy's name. A new method is one `METHODS.register(Method(...))`, here or in a researcher's own module
(ARCHITECTURE.md).

Every method prunes its own training (random: at random), so a method is a way of choosing a round's
training set or its mask; round 0 (dense, all of D0, full schedule) is shared by all of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prac.plugins import load_plugins
from prac.settings.config import ExperimentConfig
from prac.strategies.pruners import PRUNERS, Pruner
from prac.registry import Registry
from prac.strategies.selectors import SELECTORS, Selector

# The settings of config.prac that PrAC reads; a method's `reads` names those that can change its result.
PRAC_SETTINGS = frozenset({"forget_threshold", "early_stop", "early_stop_eps", "early_stop_window",
                           "schedule_scaling", "min_epochs", "use_cep"})
ALL_PRAC_SETTINGS = PRAC_SETTINGS | {"budget"}  # budget: read by the methods whose `budget` is "setting"
_EARLY_STOP = frozenset({"early_stop", "early_stop_eps", "early_stop_window"})


@dataclass(frozen=True)
class TicketStart:
    """The θ a ticket m ⊙ θ starts from."""

    name: str  # the ticket's record says theta_<name>
    fresh_init: bool  # a fresh random initialisation instead of θ_rewind (OpenLTH's reinit sanity check)


REWIND = TicketStart("rewind", fresh_init=False)
REINIT = TicketStart("reinit", fresh_init=True)


@dataclass(frozen=True)
class Method:
    name: str
    selector: Selector  # what round r ≥ 1 trains on
    pruner: Pruner
    scales_schedule: bool  # a round on a subset trains |D|/|D0| of the schedule (prac.schedule_scaling)
    early_stop: bool  # rounds ≥ 1 stop when the mask settles; round 0 is taken where early stop fired
    ticket_start: TicketStart
    reads: frozenset[str]  # the config.prac settings it reads (CET's forget_threshold: every method)
    summary: str
    # "prac-run": rounds ≥ 1 train at the budget of the prac run of the same settings and seed (prac.imp.budget:
    # as many samples, as many epochs, no early stop of their own; round 0 where prac's is, so early_stop=True);
    # "setting": so when config.prac.budget says "prac-run"; "own": never.
    budget: Literal["own", "prac-run", "setting"] = "own"

    def at_prac_budget(self, config: ExperimentConfig) -> bool:
        return self.budget == "prac-run" or (self.budget == "setting" and config.prac.budget == "prac-run")

    @property
    def compared_at_prac_budget(self) -> bool:
        """Meant to cost what prac costs (at its budget, or sized like its sets): a comparison warns if not."""
        return self.budget != "own" or self.selector.sized_like_prac

    def uses_cep(self, config: ExperimentConfig) -> bool:
        """Whether it needs CEP (the dense model's predictions): for its set, or for its set's size."""
        sized_by_own_cep = self.selector.sized_like_prac and not self.at_prac_budget(config)
        return config.prac.use_cep and (self.selector.uses_cep or sized_by_own_cep)

    @property
    def reads_transfer(self) -> bool:
        return self.selector.reads_transfer

    @property
    def needs_early_scores(self) -> bool:
        return self.selector.early_score is not None

    @property
    def ticket_is_next_round(self) -> bool:
        """Training round r+1 *is* the retrain of mask r (all of D0, full schedule, no early stop, from
        θ_rewind): its ticket needs no retrain of its own."""
        return self.selector.trains_on_all and not self.early_stop and not self.ticket_start.fresh_init


_SIZE_LIKE_PRAC = "as many as the prac run's set, for its epochs (prac.budget=own: as its own CET ∪ CEP)"
_AT_PRAC_BUDGET = "iterative, each round on the prac run's PrAC set for its epochs"
_S, _P = SELECTORS.get, PRUNERS.get


def _subset(name: str, what: str) -> Method:
    """A selection rule of its own name in place of CET ∪ CEP, at prac's budget or (prac.budget=own) its own."""
    return Method(name, _S(name), _P("magnitude"), True, True, REWIND, ALL_PRAC_SETTINGS, f"{what}: {_SIZE_LIKE_PRAC}",
                  budget="setting")


def _at_prac_budget(name: str, criterion: str) -> Method:
    """A pruning criterion of its own name in place of |w|, trained as the prac run was."""
    return Method(name, _S("prac-run-set"), _P(name), True, True, REWIND, PRAC_SETTINGS,
                  f"{criterion} instead of |w|, {_AT_PRAC_BUDGET}", budget="prac-run")


METHODS: Registry[Method] = Registry("method")
for _method in (
    Method("prac", _S("prac"), _P("magnitude"), True, True, REWIND, PRAC_SETTINGS,
           "PrAC: each round trains on CET ∪ CEP of the last, its schedule scaled to the set, early stop"),
    Method("lt", _S("all"), _P("magnitude"), False, False, REWIND, frozenset({"forget_threshold"}),
           "the lottery ticket (IMP with rewinding): every round on all of D0 for the full schedule"),
    Method("random", _S("all"), _P("random"), False, False, REWIND, frozenset({"forget_threshold"}),
           "random pruning at lt's rates: the sparsity alone"),
    Method("random-reinit", _S("all"), _P("magnitude"), False, False, REINIT, frozenset({"forget_threshold"}),
           "lt's masks with a fresh random initialisation (OpenLTH's sanity check): the rewind weights' share"),
    _subset("random-subset", "random samples of D0 where prac picks CET ∪ CEP"),
    _subset("el2n-subset", "the highest-EL2N samples of the dense model early in training (Paul et al. 2021)"),
    _subset("entropy-subset", "the highest-entropy samples under the round's sparse model (Lewis & Gale 1994)"),
    _subset("svp-subset", "selection via proxy (Coleman et al. 2020): the most uncertain samples under the dense "
                          "model at its rewind point"),
    Method("cet-only", _S("cet"), _P("magnitude"), True, True, REWIND, PRAC_SETTINGS - {"use_cep"},
           "PrAC without CEP (the paper's ablation): each round on the forgotten samples of the last"),
    Method("transfer", _S("transfer"), _P("magnitude"), True, True, REWIND, PRAC_SETTINGS - {"use_cep"},
           "each round on the PrAC set another run (transfer.source) chose in that round, e.g. with another model"),
    _at_prac_budget("snip", "SNIP's connection sensitivity |g ⊙ w| (Lee et al. 2018)"),
    _at_prac_budget("grasp", "GraSP's gradient-flow score −w ⊙ Hg (Wang et al. 2020)"),
    _at_prac_budget("synflow", "SynFlow's data-free synaptic flow (Tanaka et al. 2020)"),
    Method("early-bird", _S("all"), _P("magnitude"), False, True, REWIND, _EARLY_STOP | {"forget_threshold"},
           "all of D0 with PrAC's early stop: the stopping rule without the data selection"),
):
    METHODS.register(_method)


def get_method(name: str) -> Method:
    """The method registered as `name`, here or by a plugin module (prac.plugins, loaded on the first name not
    found); an unknown name is a one-line UserError."""
    if name not in METHODS:
        load_plugins()
    return METHODS.get(name)
