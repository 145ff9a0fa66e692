"""Settings no run can complete, refused before anything is written (one line with the limit in it, exit 2 from the
CLI). They depend on the data and the model (how many samples, classes and prunable weights), so they are checked
where the experiment's data is loaded (prac.imp.context.build_context), not with the config alone."""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import torch
from torch import nn

from prac.data.device_data import DeviceData
from prac.errors import UserError
from prac.models import build_model
from prac.settings.config import ExperimentConfig, PruneConfig
from prac.training.masks import LAYER_TYPES, layer_types, prunable_parameters
from prac.training.pruning import PruneRule, prune_count


def check_bounds(config: ExperimentConfig, data: DeviceData) -> None:
    """UserError (one line) for a setting that no run of this data and model can complete."""
    train, val = len(data.train_index), len(data.val_index)
    if config.train.batch_size > train:
        raise UserError(f"train.batch_size={config.train.batch_size} is larger than the training set D0 "
                        f"({train} samples): at most {train}")
    if val < data.num_classes:
        need = math.ceil(data.num_classes / (train + val) * 1000) / 1000  # three decimals, rounded up
        samples = f"{val} validation sample{'s' if val != 1 else ''}"
        raise UserError(f"data.val_fraction={config.data.val_fraction} leaves {samples}, fewer than the "
                        f"{data.num_classes} classes: at least {need} (or more training images)")
    model = shape_model(config, data)
    sizes = {name: p.numel() for name, p in prunable_parameters(model).items()}
    check_rounds(config.prune, config.model.name, sizes, layer_types(model))


def shape_model(config: ExperimentConfig, data: DeviceData) -> nn.Module:
    """The experiment's model on the meta device: its shapes only, no memory, no draw from the RNG."""
    channels, size, _ = data.image_shape
    with torch.device("meta"):
        return build_model(config.model.name, in_channels=channels, num_classes=data.num_classes, image_size=size,
                           width=config.model.width)


def _pool_rounds(sizes: dict[str, int], rule: PruneRule) -> Iterator[tuple[list[int], list[int], list[float]]]:
    """Round after round, for each pool `rule` prunes (rate > 0): the weights it keeps before the round, those the
    round removes (round(rate x kept): prac.training.pruning.prune_by_scores), and its rate. Whichever weights the
    scores pick, these counts are known before any round trains."""
    pools = [(names, rate) for names, rate in rule.pools(sizes) if rate > 0]
    rates = [rate for _, rate in pools]
    kept = [sum(sizes[n] for n in names) for names, _ in pools]
    while True:
        removed = [prune_count(k, rate) for k, rate in zip(kept, rates)]
        yield kept, removed, rates
        kept = [k - gone for k, gone in zip(kept, removed)]


def rounds_limit(sizes: dict[str, int], rule: PruneRule) -> tuple[int, int, str]:
    """How many rounds by `rule` each remove at least one weight and leave at least one in each pool it prunes
    (global: a layer type's tensors, layerwise: a tensor): (rounds, weights kept after them in the whole network,
    why one more cannot). A pool at rate 0 keeps its weights and never limits."""
    steps = _pool_rounds(sizes, rule)
    kept, removed, rates = next(steps)
    dense = sum(sizes.values()) - sum(kept)  # the weights of pools at rate 0
    for rounds in itertools.count():
        if not any(removed):
            return rounds, dense + sum(kept), _removes_none(kept, rates)
        if any(k - gone < 1 for k, gone in zip(kept, removed)):
            where = "a layer" if rule.scope == "layerwise" else "a layer type" if len(kept) > 1 else "the network"
            return rounds, dense + sum(kept), f"one more round would leave {where} without a weight"
        kept, removed, rates = next(steps)


def _removes_none(remaining: list[int], rates: list[float]) -> str:
    if not rates:
        return "a round removes none of them (every layer type's rate is 0)"
    kept, rate = max(zip(remaining, rates), key=lambda pool: pool[1] * pool[0])  # the pool nearest to losing one
    return f"a round removes none of them (round({rate:g} x {kept}) = 0)"


def _rates_text(prune: PruneConfig, types: dict[str, str]) -> str:
    """The rates the network's layer types prune at: prune.rate when they all are it, else each type's."""
    present = [kind for kind in LAYER_TYPES if kind in types.values()]
    rates = prune.type_rates()
    if all(rates[kind] == prune.rate for kind in present):
        return f"prune.rate={prune.rate:g}"
    return ", ".join(f"prune.{kind}_rate={rates[kind]:g}" for kind in present)


def check_rounds(prune: PruneConfig, model: str, sizes: dict[str, int], types: dict[str, str]) -> None:
    if not sizes:
        raise UserError(f"{model} has no prunable weights (no conv or linear layer)")
    limit, kept, why = rounds_limit(sizes, PruneRule(types, prune.type_rates(), prune.scope))
    if prune.rounds > limit:
        raise UserError(f"prune.rounds={prune.rounds}: after {limit} rounds at {_rates_text(prune, types)} "
                        f"({prune.scope}), {model}'s {sum(sizes.values()):,} prunable weights are down to {kept:,} "
                        f"and {why}: at most {limit}")


def round_sparsities(sizes: dict[str, int], rule: PruneRule, rounds: int) -> list[float]:
    """Each round's mask sparsity (prac.training.masks.sparsity: of every tensor in `sizes`) before any round
    trains (_pool_rounds). What runtime.evaluate_tickets=at: chooses its rounds by (prac.imp.imp_loop
    .ticket_rounds); a change to how many weights a round removes changes this too."""
    total = sum(sizes.values())
    kept, out = total, []
    for _, removed, _ in itertools.islice(_pool_rounds(sizes, rule), rounds):
        kept -= sum(removed)
        out.append(1.0 - kept / total)  # as the masks' sparsity computes it, to the last bit
    return out
