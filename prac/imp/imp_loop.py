"""The IMP loop over rounds, written once: the engine runs it with plain function calls, the Prefect
flow with tasks. `steps` runs the stages (prac.imp.stage_table); callbacks see each round's record as it completes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from prac.artifacts.refs import ArtifactRef
from prac.settings.config import ExperimentConfig
from prac.strategies.methods import get_method
from prac.imp.round_record import RoundRecord, ticket_accuracy
from prac.imp.stage_table import (DENSE_PREDICTIONS, PRUNE, RETRAIN, SELECT_CEP, SELECT_CET, TICKET_FROM_NEXT_ROUND,
                              TRAIN_ROUND, Stage)


class Steps(Protocol):
    def run(self, stage: Stage, r: int | None, **inputs: ArtifactRef | None) -> ArtifactRef:
        """Run one stage of prac.imp.stage_table (r: its round; None for a stage run once) on its named inputs."""

    def record(self, r: int, train: ArtifactRef, mask: ArtifactRef, previous_sparsity: float,
               prac_set: ArtifactRef, ticket: ArtifactRef | None, cumulative_before: int) -> RoundRecord: ...


@dataclass
class RoundOutputs:
    record: RoundRecord
    train: ArtifactRef
    mask: ArtifactRef
    prac_set: ArtifactRef
    ticket: ArtifactRef | None


def ticket_wanted(config: ExperimentConfig, round_index: int) -> bool:
    last = round_index == config.prune.rounds - 1
    return config.runtime.evaluate_tickets == "all" or (config.runtime.evaluate_tickets == "last" and last)


def run_rounds(config: ExperimentConfig, steps: Steps,
               on_round: Callable[[RoundOutputs], None] = lambda _: None,
               on_late_ticket: Callable[[RoundOutputs], None] = lambda _: None) -> list[RoundOutputs]:
    method = get_method(config.method)
    rounds, lt_like = config.prune.rounds, method.ticket_is_next_round
    outputs: list[RoundOutputs] = []
    mask = prac_set = dense = None
    for r in range(rounds):
        train = steps.run(TRAIN_ROUND, r, mask=mask, prac_set=prac_set)
        if r == 0 and (method.uses_cep(config) or method.needs_early_scores):
            dense = steps.run(DENSE_PREDICTIONS, None, round0=train)
        cet = steps.run(SELECT_CET, r, train=train, prac_set=prac_set)
        new_mask = steps.run(PRUNE, r, train=train, mask=mask, prac_set=prac_set)
        new_prac_set = steps.run(SELECT_CEP, r, train=train, cet=cet, dense=dense)
        if lt_like and r >= 1 and ticket_wanted(config, r - 1):
            # For lt and random, training round r *is* the retrain of mask r-1 (same weights, data,
            # schedule and data order): its ticket is known only now (prac.strategies.methods).
            before = outputs[r - 1]
            before.ticket = steps.run(TICKET_FROM_NEXT_ROUND, r - 1, next_train=train)
            before.record.ticket_test_acc = ticket_accuracy(before.ticket)
            on_late_ticket(before)
        ticket = None
        if ticket_wanted(config, r) and (not lt_like or r == rounds - 1):
            ticket = steps.run(RETRAIN, r, mask=new_mask)
        previous = outputs[-1].record if outputs else None
        record = steps.record(r, train, new_mask, previous.sparsity if previous else 0.0, new_prac_set, ticket,
                              previous.cumulative_iterations if previous else 0)
        outputs.append(RoundOutputs(record, train, new_mask, new_prac_set, ticket))
        on_round(outputs[-1])
        mask, prac_set = new_mask, new_prac_set
    return outputs
