"""The tickets bench/inference.py times: one per IMP round, each the masked network and its dense twin.

Without a run folder: a freshly initialised network pruned by the engine's own magnitude pruning
(prac.training.pruning.magnitude_prune at the preset's per-layer-type rates and scope), once per round, each mask
nested in the last, as IMP's rounds prune; round r's mask is that of r + 1 prunes, as the engine's round r (round 0
trains the dense network, then prunes). The weights are not trained: a kernel's time depends on the shapes and on
where the zeros are, not on the kept values, and magnitude pruning of the initial weights gives an unstructured
pattern at the same per-layer sparsities. With a run folder: its rounds' masks, on the trained ticket where the
round was retrained (prac.imp.ticket.load_ticket), else on its untrained start m ⊙ θ.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from prac.export.export_run import retrained_rounds
from prac.imp.context import ExperimentContext
from prac.imp.ticket import layer_sparsity, load_ticket, new_cpu_model, ticket_context, total_sparsity
from prac.models import build_model
from prac.layout.run_paths import run_paths
from prac.settings.presets import preset_config
from prac.training.masks import Mask, full_mask, layer_types, prunable_parameters
from prac.training.pruning import PruneRule, magnitude_prune

IMAGE_SHAPE = (1, 28, 28)  # Fashion-MNIST, what the presets below train on
NUM_CLASSES = 10
# model -> the preset whose pruning rates and round count it takes (Frankle & Carbin's per-type rates).
PRESETS = {"lenet300": "fashion-lenet", "conv2": "fashion-conv", "conv4": "fashion-conv"}


@dataclass(frozen=True)
class Ticket:
    model: str  # prac.models name
    round: int
    sparsity: float  # of every prunable weight (conv and linear), counted from the masked network's zeros
    dense: nn.Module  # the same network with every weight (eval mode)
    masked: nn.Module  # m ⊙ θ: the pruned weights exactly zero, dense layers (eval mode)
    weights: str  # what the kept values are: "untrained", "trained" or "untrained start"
    image_shape: tuple[int, int, int]


def preset_rounds(model: str) -> int:
    return preset_config(PRESETS[model]).prune.rounds


def prune_rule(model: str, network: nn.Module) -> PruneRule:
    """The rule the engine prunes `network` by under the model's preset (prac.imp.context.prune_rule)."""
    prune = preset_config(PRESETS[model], model={"name": model}).prune
    return PruneRule(layer_types(network), prune.type_rates(), prune.scope)


def fresh_network(model: str, seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # the caller's RNG stays where it was
        torch.manual_seed(seed)
        channels, size, _ = IMAGE_SHAPE
        return build_model(model, in_channels=channels, num_classes=NUM_CLASSES, image_size=size).eval()


def imp_masks(network: nn.Module, rule: PruneRule, rounds: int) -> Iterator[tuple[int, Mask]]:
    """Round r's mask for r in 0..rounds-1: r + 1 magnitude prunes of `network`'s (unchanging) weights."""
    weights = {name: p.detach() for name, p in prunable_parameters(network).items()}
    mask = full_mask(network)
    for round_index in range(rounds):
        mask = magnitude_prune(weights, mask, rule)
        yield round_index, mask


@torch.no_grad()
def masked_copy(network: nn.Module, mask: Mask) -> nn.Module:
    masked = copy.deepcopy(network).eval()
    for name, weight in prunable_parameters(masked).items():
        weight.mul_(mask[name])
    return masked


def imp_tickets(model: str, rounds: Sequence[int], seed: int = 0) -> Iterator[Ticket]:
    """The tickets of `rounds` (of the preset's) of a fresh `model`, in round order."""
    network = fresh_network(model, seed)
    wanted = set(rounds)
    for round_index, mask in imp_masks(network, prune_rule(model, network), max(wanted) + 1):
        if round_index in wanted:
            masked = masked_copy(network, mask)
            yield Ticket(model, round_index, total_sparsity(layer_sparsity(masked)), network, masked, "untrained",
                         IMAGE_SHAPE)


def run_context(run: Path) -> ExperimentContext:
    """The experiment of the run folder `run`, on the CPU (a folder that is not a run's: prac's one-line error)."""
    return ticket_context(run)


def run_rounds(ctx: ExperimentContext) -> list[int]:
    """The run's rounds that have a mask on disk."""
    paths = run_paths(ctx.config)
    return [r for r in range(ctx.config.prune.rounds) if (paths.round(r) / "mask.parquet").is_file()]


def run_tickets(ctx: ExperimentContext, rounds: Sequence[int]) -> Iterator[Ticket]:
    """The run's tickets of `rounds`: trained where the round was retrained, else the untrained start."""
    trained = set(retrained_rounds(ctx))
    dense = new_cpu_model(ctx).eval()
    for round_index in rounds:
        masked = load_ticket(ctx, round_index, trained=round_index in trained)
        yield Ticket(ctx.config.model.name, round_index, total_sparsity(layer_sparsity(masked)), dense, masked,
                     "trained" if round_index in trained else "untrained start", tuple(ctx.data.image_shape))
