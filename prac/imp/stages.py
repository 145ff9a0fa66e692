"""The stages of one IMP round, each with explicit inputs and outputs (no hidden state):
train-round, select-CET, prune, select-CEP, retrain. The pipeline calls these one by one."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from prac.imp.context import ExperimentContext
from prac.training.evaluate import predict, probabilities
from prac.training.masks import Mask, MaskEnforcer, full_mask
from prac.hardware.placement import to_numpy
from prac.strategies.pruners import PruneInputs
from prac.seeds import seed_for
from prac.training.round_types import EarlyStopSpec, RoundResult, RoundSpec, StateDict
from prac.training.schedule import full_schedule, scaled_schedule
from prac.training.selection import select_cep, select_cet
from prac.strategies.selectors import SelectionInputs
from prac.training.round_run import RoundRun
from prac.training.stacked import stack_size, train_stacked
from prac.training.train import load_start_state, train_round

Log = Callable[[str], None] | None


def _early_stop_spec(ctx: ExperimentContext, stop: bool) -> EarlyStopSpec | None:
    prac = ctx.config.prac
    if not prac.early_stop:
        return None
    prune = ctx.config.prune
    return EarlyStopSpec(prac.early_stop_eps, prac.early_stop_window, prune.type_rates(), stop, prune.scope)


def train_dense_round(ctx: ExperimentContext, log: Log = None,
                      checkpoint_path: Path | None = None) -> RoundResult:
    """Round 0, shared by the arms: dense training on all of D0 for the full schedule, noting
    where early stop fires (the prac arm takes that point) and keeping the rewind point."""
    config = ctx.config
    model = ctx.new_model()
    mask = full_mask(model)
    spec = RoundSpec(full_schedule(config.train), seed=config.seed, rewind_epoch=config.prune.rewind_epoch,
                     early_stop=_early_stop_spec(ctx, stop=False))
    return train_round(model, mask, ctx.data, config.train, spec, log, checkpoint_path=checkpoint_path)


def train_sparse_round(ctx: ExperimentContext, rewind_state: StateDict, mask: Mask,
                       subset: np.ndarray | None, log: Log = None, checkpoint_path: Path | None = None,
                       budget_epochs: int | None = None) -> RoundResult:
    """Round r ≥ 1: m ⊙ θ_rewind trained on the subset (None: all of D0). Methods that scale their schedule
    train |subset|/|D0| of it; those that stop early stop when the mask settles (prac.strategies.methods).
    `budget_epochs` (at the prac run's budget, prac.imp.budget): that schedule, cut after the epochs the prac
    run's round ran, with no early stop of its own."""
    config, method = ctx.config, ctx.method
    if method.scales_schedule and subset is not None:
        schedule = scaled_schedule(config.train, len(subset), len(ctx.data.train), config.prac.schedule_scaling,
                                   config.prac.min_epochs)
    else:
        schedule = full_schedule(config.train)
    stops_early = method.early_stop and budget_epochs is None
    if budget_epochs is not None:
        schedule = dataclasses.replace(schedule, epochs=min(budget_epochs, schedule.epochs))
    spec = RoundSpec(schedule, seed=config.seed, subset=subset,
                     early_stop=_early_stop_spec(ctx, stop=True) if stops_early else None)
    model = load_start_state(ctx.new_model(), rewind_state, mask)
    return train_round(model, mask, ctx.data, config.train, spec, log, checkpoint_path=checkpoint_path)


def cet_over_d0(ctx: ExperimentContext, forget_events: np.ndarray, subset: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """select-CET: (in_cet, forget_events) as arrays over D0; samples not trained are not in CET."""
    size = len(ctx.data.train)
    positions = np.arange(size) if subset is None else subset
    events = np.zeros(size, dtype=np.int32)
    events[positions] = forget_events
    in_cet = np.zeros(size, dtype=bool)
    in_cet[positions] = select_cet(forget_events, ctx.config.prac.forget_threshold)
    return in_cet, events


def prune(ctx: ExperimentContext, weights: StateDict, mask: Mask, round_index: int,
          subset: Callable[[], np.ndarray | None]) -> Mask:
    """prune: the next mask by the method's pruner (prac.strategies.pruners) from the round's last weights
    (`subset`: the D0 positions the round trained on, None: all; read only by criteria that score on data).
    Weights and mask on the training device; so is the new mask."""
    return ctx.method.pruner.prune(PruneInputs(
        ctx.config, round_index, weights, mask, ctx.prune_rule(),
        network=lambda: _model_at(ctx, weights, mask).eval(),
        score_batch=lambda: score_batch(ctx, subset(), round_index)))


# The data-dependent criteria score on this many samples of each class of the round's data: GraSP's choice
# (10 per class), which SynFlow's comparisons kept; one batch, drawn by seed and round.
SCORE_SAMPLES_PER_CLASS = 10


def score_batch(ctx: ExperimentContext, subset: np.ndarray | None, round_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, labels) on the training device: up to SCORE_SAMPLES_PER_CLASS samples of each class of the
    round's data, no augmentation."""
    labels = to_numpy(ctx.data.train.labels)
    positions = np.arange(len(labels)) if subset is None else np.asarray(subset)
    generator = np.random.default_rng(seed_for(ctx.config.seed, "score-batch", round_index))
    chosen = [generator.choice(of_class, size=min(SCORE_SAMPLES_PER_CLASS, len(of_class)), replace=False)
              for of_class in (positions[labels[positions] == c] for c in np.unique(labels[positions]))]
    index = torch.as_tensor(np.sort(np.concatenate(chosen)), device=ctx.data.train.labels.device)
    inputs = ctx.data.prepare(ctx.data.train.images[index], None, ctx.config.train.channels_last)
    return inputs, ctx.data.train.labels[index]


def _model_at(ctx: ExperimentContext, state: StateDict, mask: Mask | None) -> torch.nn.Module:
    model = ctx.new_model()
    model.load_state_dict(state)
    if mask is not None:
        MaskEnforcer(model, mask).apply_to_weights()
    if ctx.config.train.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def predictions_on_d0(ctx: ExperimentContext, state: StateDict, mask: Mask | None = None) -> np.ndarray:
    """Eval-mode predicted classes of every D0 sample (no augmentation)."""
    channels_last = ctx.config.train.channels_last
    return to_numpy(predict(_model_at(ctx, state, mask), ctx.data.train, ctx.data, channels_last))


def early_scores_on_d0(ctx: ExperimentContext, state: StateDict) -> np.ndarray:
    """The method's selector's early_score (EL2N, a proxy's entropy) of every D0 sample under the dense weights
    `state` early in training, eval mode, no augmentation."""
    channels_last = ctx.config.train.channels_last
    probs = to_numpy(probabilities(_model_at(ctx, state, None), ctx.data.train, ctx.data, channels_last))
    return ctx.method.selector.score_early(probs, to_numpy(ctx.data.train.labels).astype(np.int64))


def next_training_set(ctx: ExperimentContext, round_index: int, in_cet: np.ndarray, in_cep: np.ndarray,
                      early_scores: np.ndarray | None, sparse_best: Callable[[], StateDict],
                      budget_size: int | None = None, budget_set: Callable[[], np.ndarray] | None = None) -> np.ndarray:
    """The next round's training set over D0, by the method's selector (prac.strategies.selectors). `sparse_best`: the
    round's best weights, read when a selector asks for the sparse model's probabilities."""
    def sparse_probabilities() -> np.ndarray:
        channels_last = ctx.config.train.channels_last
        return to_numpy(probabilities(_model_at(ctx, sparse_best(), None), ctx.data.train, ctx.data, channels_last))

    return ctx.method.selector.select(SelectionInputs(
        ctx.config, round_index, in_cet, in_cep, train_index=ctx.data.train_index.astype(np.int64),
        labels=to_numpy(ctx.data.train.labels).astype(np.int64), early_scores=early_scores,
        probabilities=sparse_probabilities, budget_size=budget_size, budget_set=budget_set))


def select_cep_stage(ctx: ExperimentContext, dense_predictions: np.ndarray, sparse_best: StateDict) -> np.ndarray:
    """select-CEP: D0 samples where round 0's best dense model and this round's best model disagree."""
    return select_cep(dense_predictions, predictions_on_d0(ctx, sparse_best))


def ticket_start_state(ctx: ExperimentContext, rewind_state: StateDict) -> StateDict:
    """The weights a ticket starts from: θ_rewind, or a fresh initialisation (prac.strategies.methods `ticket_start`)."""
    return ctx.reinit_state() if ctx.method.ticket_start.fresh_init else rewind_state


def retrain(ctx: ExperimentContext, mask: Mask, rewind_state: StateDict, log: Log = None,
            checkpoint_path: Path | None = None) -> RoundResult:
    """Ticket evaluation: m ⊙ θ_start on all of D0, full schedule, best-validation checkpoint."""
    spec = RoundSpec(full_schedule(ctx.config.train), seed=ctx.config.seed)
    model = load_start_state(ctx.new_model(), ticket_start_state(ctx, rewind_state), mask)
    return train_round(model, mask, ctx.data, ctx.config.train, spec, log, checkpoint_path=checkpoint_path)


def retrain_stacked(ctx: ExperimentContext, masks: dict[int, Mask], rewind_state: StateDict,
                    checkpoints: dict[int, Path], log: Log = None, say: Log = None) -> dict[int, RoundResult]:
    """The retrains of several rounds' masks (`retrain` each), K at a time as one stacked computation
    (prac.training.stacked; K: runtime.stack_tickets, else what the device's free memory holds). Each ticket keeps
    its own checkpoint, so a killed stack resumes every ticket. `log`: epoch lines; `say`: the stack's own."""
    spec = RoundSpec(full_schedule(ctx.config.train), seed=ctx.config.seed)
    start = ticket_start_state(ctx, rewind_state)
    runs = {}
    for r, mask in masks.items():
        model = load_start_state(ctx.new_model(), start, mask)  # a module each (not with runtime.compile: the queue)
        label = (lambda line, r=r: log(f"{line} (ticket of round {r})")) if log is not None else None
        runs[r] = RoundRun(model, mask, ctx.data, ctx.config.train, spec, label, checkpoints[r])
    stack = stack_size(ctx.config.runtime.stack_tickets, list(runs.values()), ctx.data, say)
    if say is not None:
        say(f"retraining the tickets of rounds {', '.join(map(str, masks))}, {stack} at a time")
    train_stacked(list(runs.values()), ctx.data, stack, say)
    return {r: run.result() for r, run in runs.items()}
