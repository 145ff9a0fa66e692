"""The stages of an IMP round, declared once. The engine's steps (prac/experiment.py), the Prefect tasks
(prac_lth/tasks/stage_tasks.py), the cache keys (prac_lth/tasks/caching.py) and `--recompute`'s names
(prac/imp/recompute.py) are derived from this table; prac/imp/imp_loop.py calls the stages in their order. A new stage
is one entry here, its step function (prac/imp/imp_steps.py: context, round, input references -> output reference)
and its call in the loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prac.imp import imp_steps
from prac.artifacts.refs import ArtifactRef, checked_path
from prac.imp.context import ExperimentContext
from prac.imp.trained_ticket import checked_ticket

Log = Callable[[str], None] | None


@dataclass(frozen=True)
class Stage:
    name: str  # the task's name, --recompute's, and part of the cache key
    step: Callable[..., ArtifactRef]  # (ctx, [round_index], *inputs, [log=], [fresh=]) -> the output's reference
    inputs: tuple[str, ...]  # the artifact references it reads, in the step's order (names in the cache key)
    output: str  # what it writes (documentation: the file in the round's folder)
    per_round: bool = True  # False: once per experiment
    progress: str | None = None  # its log lines are epoch progress, labelled so ("round {r}"); verbose-only
    warns: bool = False  # it logs warnings (to the run's log)
    fresh: bool = False  # it reuses files of its own (checkpoints, the shared round 0): a recompute sets them aside
    shared_round0: bool = False  # its round 0 is shared by every method of a seed (one cache key for all)
    note: Callable[[ExperimentContext, int | None], str | None] | None = None  # said by the engine before it runs
    stacks: bool = False  # given other rounds' inputs (`stack_with`), it runs theirs too, as one stack
    # a reused (cached) output verified before it is trusted: its file; a ticket's with its trained weights
    check: Callable[[ArtifactRef], Path] = checked_path

    def call(self, ctx: ExperimentContext, round_index: int | None, inputs: dict[str, ArtifactRef | None],
             progress: Log = None, warn: Log = None, fresh: bool = False,
             stack_with: dict[int, ArtifactRef] | None = None) -> ArtifactRef:
        args = [ctx, *([round_index] if self.per_round else []), *(inputs[name] for name in self.inputs)]
        kwargs: dict = {"log": progress} if self.progress else {"log": warn} if self.warns else {}
        if self.fresh:
            kwargs["fresh"] = fresh
        if self.stacks and stack_with:
            kwargs.update(stack_with=stack_with, say=warn)  # how many at a time, an out-of-memory fallback: shown
        return self.step(*args, **kwargs)


def _round0_note(ctx: ExperimentContext, round_index: int | None) -> str | None:
    if round_index == 0 and imp_steps.round0_is_current(ctx):
        return f"round 0: reusing the shared dense round {imp_steps.round0_file(ctx)}"
    return None


TRAIN_ROUND = Stage("train-round", imp_steps.train_round_step, ("mask", "prac_set"), "train.pt",
                    progress="round {r}", fresh=True, shared_round0=True, note=_round0_note)
DENSE_PREDICTIONS = Stage("dense-predictions", imp_steps.dense_predictions_step, ("round0",),
                          "dense_predictions.parquet", per_round=False)
SELECT_CET = Stage("select-cet", imp_steps.select_cet_step, ("train", "prac_set"), "cet.parquet")
PRUNE = Stage("prune", imp_steps.prune_step, ("train", "mask", "prac_set"), "mask.parquet")
SELECT_CEP = Stage("select-cep", imp_steps.select_cep_step, ("train", "cet", "dense"), "prac_set.parquet", warns=True)
RETRAIN = Stage("retrain", imp_steps.retrain_step, ("mask",), "ticket.json", progress="retrain of mask {r}",
                fresh=True, stacks=True, check=checked_ticket)
TICKET_FROM_NEXT_ROUND = Stage("ticket-from-next-round", imp_steps.ticket_from_next_round_step,
                               ("next_train", "mask"), "ticket.json", check=checked_ticket)

STAGES: dict[str, Stage] = {s.name: s for s in (TRAIN_ROUND, DENSE_PREDICTIONS, SELECT_CET, PRUNE, SELECT_CEP,
                                                 RETRAIN, TICKET_FROM_NEXT_ROUND)}
