"""The stages of one IMP round, each with explicit inputs and outputs (no hidden state):
train-round, select-CET, prune, select-CEP, retrain. The pipeline calls these one by one."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from prac.context import ExperimentContext
from prac.evaluate import predict
from prac.fingerprint import seed_for
from prac.masks import Mask, MaskEnforcer, full_mask
from prac.placement import to_numpy
from prac.pruning import magnitude_prune, random_prune
from prac.schedule import full_schedule, scaled_schedule
from prac.selection import select_cep, select_cet
from prac.train import EarlyStopSpec, RoundResult, RoundSpec, StateDict, load_start_state, train_round

Log = Callable[[str], None] | None


def _early_stop_spec(ctx: ExperimentContext, stop: bool) -> EarlyStopSpec | None:
    prac = ctx.config.prac
    if not prac.early_stop:
        return None
    return EarlyStopSpec(prac.early_stop_eps, prac.early_stop_window, ctx.config.prune.rate, stop,
                         ctx.config.prune.scope)


def train_dense_round(ctx: ExperimentContext, log: Log = None,
                      checkpoint_path: Path | None = None) -> RoundResult:
    """Round 0, shared by the arms: dense training on all of D0 for the full schedule, noting
    where early stop fires (the prac arm takes that point) and keeping the rewind point."""
    config = ctx.config
    model = ctx.new_model()
    mask = full_mask(model, config.prune.prune_linear)
    spec = RoundSpec(full_schedule(config.train), seed=config.seed, rewind_epoch=config.prune.rewind_epoch,
                     early_stop=_early_stop_spec(ctx, stop=False))
    return train_round(model, mask, ctx.data, config.train, spec, log, checkpoint_path=checkpoint_path)


def train_sparse_round(ctx: ExperimentContext, rewind_state: StateDict, mask: Mask,
                       subset: np.ndarray | None, log: Log = None, checkpoint_path: Path | None = None) -> RoundResult:
    """Round r ≥ 1: m ⊙ θ_rewind trained on the subset (None: all of D0). The prac arm scales its
    schedule to the subset and may stop early; lt and random train the full schedule."""
    config = ctx.config
    prac_arm = config.method == "prac"
    if prac_arm and subset is not None:
        schedule = scaled_schedule(config.train, len(subset), len(ctx.data.train), config.prac.schedule_scaling,
                                   config.prac.min_epochs)
    else:
        schedule = full_schedule(config.train)
    spec = RoundSpec(schedule, seed=config.seed, subset=subset,
                     early_stop=_early_stop_spec(ctx, stop=True) if prac_arm else None)
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


def prune(ctx: ExperimentContext, weights: StateDict, mask: Mask, round_index: int) -> Mask:
    """prune: global magnitude pruning of the round's last weights (random for the random arm: its draws
    come from a CPU generator, so a seed gives the same mask on any device). Weights and mask on the
    training device; so is the new mask."""
    rate = ctx.config.prune.rate
    if ctx.config.method == "random":
        generator = torch.Generator().manual_seed(seed_for(ctx.config.seed, "random-prune", round_index))
        return random_prune(mask, rate, generator, ctx.config.prune.scope)
    return magnitude_prune({n: weights[n] for n in mask}, mask, rate, ctx.config.prune.scope)


def predictions_on_d0(ctx: ExperimentContext, state: StateDict, mask: Mask | None = None) -> np.ndarray:
    """Eval-mode predicted classes of every D0 sample (no augmentation)."""
    model = ctx.new_model()
    model.load_state_dict(state)
    if mask is not None:
        MaskEnforcer(model, mask).apply_to_weights()
    channels_last = ctx.config.train.channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return to_numpy(predict(model, ctx.data.train, ctx.data, channels_last))


def select_cep_stage(ctx: ExperimentContext, dense_predictions: np.ndarray, sparse_best: StateDict) -> np.ndarray:
    """select-CEP: D0 samples where round 0's best dense model and this round's best model disagree."""
    return select_cep(dense_predictions, predictions_on_d0(ctx, sparse_best))


def retrain(ctx: ExperimentContext, mask: Mask, rewind_state: StateDict, log: Log = None,
            checkpoint_path: Path | None = None) -> RoundResult:
    """Ticket evaluation: m ⊙ θ_rewind on all of D0, full schedule, best-validation checkpoint."""
    spec = RoundSpec(full_schedule(ctx.config.train), seed=ctx.config.seed)
    model = load_start_state(ctx.new_model(), rewind_state, mask)
    return train_round(model, mask, ctx.data, ctx.config.train, spec, log, checkpoint_path=checkpoint_path)
