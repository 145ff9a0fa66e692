"""Settings no run can complete, refused before anything is written (one line with the limit in it, exit 2 from the
CLI). They depend on the data and the model (how many samples, classes and prunable weights), so they are checked
where the experiment's data is loaded (prac.imp.context.build_context), not with the config alone."""
from __future__ import annotations

import math

import torch

from prac.data.device_data import DeviceData
from prac.errors import UserError
from prac.models import build_model
from prac.settings.config import ExperimentConfig, PruneConfig
from prac.training.masks import prunable_parameters
from prac.training.pruning import prune_count


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
    channels, size, _ = data.image_shape
    with torch.device("meta"):  # shapes only: no memory, no draw from the RNG
        model = build_model(config.model.name, in_channels=channels, num_classes=data.num_classes, image_size=size,
                            width=config.model.width)
    sizes = {name: p.numel() for name, p in prunable_parameters(model, config.prune.prune_linear).items()}
    check_rounds(config.prune, config.model.name, sizes)


def rounds_limit(sizes: dict[str, int], rate: float, scope: str) -> tuple[int, int, str]:
    """How many rounds at `rate` each remove at least one weight and leave at least one in the network (global)
    or in every layer (layerwise): (rounds, weights kept after them, why one more cannot)."""
    remaining = dict(sizes) if scope == "layerwise" else {"all": sum(sizes.values())}
    rounds = 0
    while True:
        removed = {name: prune_count(kept, rate) for name, kept in remaining.items()}
        kept = sum(remaining.values())
        if not any(removed.values()):
            return rounds, kept, f"a round removes none of them (round({rate:g} x {min(remaining.values())}) = 0)"
        if any(remaining[name] - removed[name] < 1 for name in remaining):
            where = "a layer" if scope == "layerwise" else "the network"
            return rounds, kept, f"one more round would leave {where} without a weight"
        remaining = {name: kept - removed[name] for name, kept in remaining.items()}
        rounds += 1


def check_rounds(prune: PruneConfig, model: str, sizes: dict[str, int]) -> None:
    if not sizes:
        raise UserError(f"{model} has no prunable weights with prune.prune_linear={str(prune.prune_linear).lower()}")
    limit, kept, why = rounds_limit(sizes, prune.rate, prune.scope)
    if prune.rounds > limit:
        raise UserError(f"prune.rounds={prune.rounds}: after {limit} rounds at prune.rate={prune.rate:g} "
                        f"({prune.scope}), {model}'s {sum(sizes.values()):,} prunable weights are down to {kept:,} "
                        f"and {why}: at most {limit}")
