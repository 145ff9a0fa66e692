"""The IMP loop over rounds, written once: the engine runs it with plain function calls, the Prefect
flow with tasks. `steps` runs the stages (prac.imp.stage_table); callbacks see each round's record as it completes.

A round's ticket retrain (its mask on all of D0, the full schedule) is not needed by the next round: `steps.start`
may run it beside the rounds that follow (runtime.retrain_alongside), and its ticket then joins its round's record
when it is done (`on_late_ticket`, as lt's tickets do), at the latest before the loop returns. The records and
files are those of the order one after another."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from prac.artifacts.refs import ArtifactRef
from prac.settings.config import ExperimentConfig, ticket_sparsities
from prac.strategies.methods import get_method
from prac.imp.round_record import RoundRecord, ticket_accuracy
from prac.imp.stage_table import (DENSE_PREDICTIONS, PRUNE, RETRAIN, SELECT_CEP, SELECT_CET, TICKET_FROM_NEXT_ROUND,
                              TRAIN_ROUND, Stage)


class Steps(Protocol):
    def run(self, stage: Stage, r: int | None, **inputs: ArtifactRef | None) -> ArtifactRef:
        """Run one stage of prac.imp.stage_table (r: its round; None for a stage run once) on its named inputs."""

    def start(self, stage: Stage, r: int, **inputs: ArtifactRef | None) -> "Pending":
        """Run a stage that nothing later in the round needs, now (`Done`) or beside what follows."""

    def record(self, r: int, train: ArtifactRef, mask: ArtifactRef, previous_sparsity: float,
               prac_set: ArtifactRef, ticket: ArtifactRef | None, cumulative_before: int) -> RoundRecord: ...


class Pending(Protocol):
    def done(self) -> bool: ...

    def result(self) -> ArtifactRef:
        """Its output, once it is done (waits; raises what the stage raised)."""


@dataclass
class Done:
    """A stage run in turn: done when started."""
    ref: ArtifactRef

    def done(self) -> bool:
        return True

    def result(self) -> ArtifactRef:
        return self.ref


@dataclass
class RoundOutputs:
    record: RoundRecord
    train: ArtifactRef
    mask: ArtifactRef
    prac_set: ArtifactRef
    ticket: ArtifactRef | None


def ticket_rounds(config: ExperimentConfig, sparsities: Sequence[float] | None = None) -> frozenset[int]:
    """The rounds whose mask is retrained (runtime.evaluate_tickets): every round, the last, none, or, for
    `at:S1,S2,…`, for each listed S the round whose mask's sparsity is nearest S (the earlier of two as near), one
    round for several S that share it. `sparsities`: each round's mask sparsity, known before the round trains
    (ExperimentContext.round_sparsities; needed only by at:)."""
    rounds, form = config.prune.rounds, config.runtime.evaluate_tickets
    targets = ticket_sparsities(form)
    if not targets:
        return frozenset(range(rounds) if form == "all" else [rounds - 1] if form == "last" else [])
    if sparsities is None or len(sparsities) != rounds:
        raise ValueError(f"runtime.evaluate_tickets={form} needs the sparsity of each of the {rounds} rounds' masks")
    return frozenset(min(range(rounds), key=lambda r: (abs(sparsities[r] - s), r)) for s in targets)


def ticket_wanted(config: ExperimentConfig, round_index: int, sparsities: Sequence[float] | None = None) -> bool:
    return round_index in ticket_rounds(config, sparsities)


def run_rounds(config: ExperimentConfig, steps: Steps,
               on_round: Callable[[RoundOutputs], None] = lambda _: None,
               on_late_ticket: Callable[[RoundOutputs], None] = lambda _: None,
               sparsities: Sequence[float] | None = None) -> list[RoundOutputs]:
    """`sparsities`: each round's mask sparsity (ExperimentContext.round_sparsities), for evaluate_tickets=at:."""
    method = get_method(config.method)
    rounds, lt_like = config.prune.rounds, method.ticket_is_next_round
    wanted = ticket_rounds(config, sparsities)
    outputs: list[RoundOutputs] = []
    retraining: dict[int, Pending] = {}  # rounds whose ticket retrain runs beside the loop

    def collect(wait: bool) -> None:
        for r_done in [r_ for r_, pending in retraining.items() if wait or pending.done()]:
            out = outputs[r_done]
            out.ticket = retraining.pop(r_done).result()
            out.record.ticket_test_acc = ticket_accuracy(out.ticket)
            on_late_ticket(out)

    mask = prac_set = dense = None
    for r in range(rounds):
        train = steps.run(TRAIN_ROUND, r, mask=mask, prac_set=prac_set)
        if r == 0 and (method.uses_cep(config) or method.needs_early_scores):
            dense = steps.run(DENSE_PREDICTIONS, None, round0=train)
        cet = steps.run(SELECT_CET, r, train=train, prac_set=prac_set)
        new_mask = steps.run(PRUNE, r, train=train, mask=mask, prac_set=prac_set)
        new_prac_set = steps.run(SELECT_CEP, r, train=train, cet=cet, dense=dense)
        if lt_like and r >= 1 and r - 1 in wanted:
            # For lt and random, training round r *is* the retrain of mask r-1 (same weights, data,
            # schedule and data order): its ticket is known only now (prac.strategies.methods).
            before = outputs[r - 1]
            before.ticket = steps.run(TICKET_FROM_NEXT_ROUND, r - 1, next_train=train, mask=before.mask)
            before.record.ticket_test_acc = ticket_accuracy(before.ticket)
            on_late_ticket(before)
        ticket = None
        if r in wanted and (not lt_like or r == rounds - 1):
            pending = steps.start(RETRAIN, r, mask=new_mask)
            if pending.done():
                ticket = pending.result()
            else:
                retraining[r] = pending
        previous = outputs[-1].record if outputs else None
        record = steps.record(r, train, new_mask, previous.sparsity if previous else 0.0, new_prac_set, ticket,
                              previous.cumulative_iterations if previous else 0)
        outputs.append(RoundOutputs(record, train, new_mask, new_prac_set, ticket))
        on_round(outputs[-1])
        collect(wait=False)
        mask, prac_set = new_mask, new_prac_set
    collect(wait=True)
    return outputs
