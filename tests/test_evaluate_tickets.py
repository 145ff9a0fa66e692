"""runtime.evaluate_tickets=at:S1,S2,…: the ticket retrained only at the round whose mask's sparsity is nearest each
listed sparsity (prac.imp.imp_loop.ticket_rounds), the rounds' sparsities known before they train
(prac.imp.bounds.round_sparsities, ExperimentContext.round_sparsities), for retrains in turn, stacked, and lt's
tickets read from its next round."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from prac.experiment import run_experiment
from prac.imp.bounds import round_sparsities
from prac.imp.imp_loop import ticket_rounds, ticket_wanted
from prac.imp.retrain_queue import stacks_retrains
from prac.imp.trained_ticket import TRAINED_FILE
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.training.masks import sparsity
from prac.training.pruning import PruneRule, prune_by_scores

SPARSITIES = [0.25, 0.5, 0.75, 0.875]  # exact in binary: the ties below are ties


def _config(*items: str):
    return apply_overrides(preset_config("digits-smoke"), ["prune.rounds=4", *items])


@pytest.mark.parametrize("form, rounds", [
    ("all", {0, 1, 2, 3}), ("last", {3}), ("none", set()),
    ("at:0.5", {1}), ("at:0.55", {1}), ("at:0.7", {2}), ("at:0.01", {0}), ("at:0.99", {3}),
    ("at:0.625", {1}),  # as near to 0.5 as to 0.75: the earlier round
    ("at:0.5,0.52,0.48", {1}),  # one round for several sparsities
    ("at:0.9,0.3,0.74", {3, 0, 2}),  # in any order
])
def test_the_rounds_whose_ticket_is_retrained(form, rounds):
    config = _config(f"runtime.evaluate_tickets={form}")
    assert ticket_rounds(config, SPARSITIES) == rounds
    assert [ticket_wanted(config, r, SPARSITIES) for r in range(4)] == [r in rounds for r in range(4)]


def test_at_needs_each_rounds_sparsity_the_other_forms_do_not():
    assert ticket_rounds(_config("runtime.evaluate_tickets=last")) == {3}
    with pytest.raises(ValueError, match="needs the sparsity of each of the 4 rounds"):
        ticket_rounds(_config("runtime.evaluate_tickets=at:0.5"))
    with pytest.raises(ValueError, match="needs the sparsity"):
        ticket_rounds(_config("runtime.evaluate_tickets=at:0.5"), SPARSITIES[:3])


def test_which_at_experiments_stack_their_retrains():
    asked = ["runtime.stack_tickets=4"]
    assert stacks_retrains(_config("runtime.evaluate_tickets=at:0.3,0.8", *asked))
    assert not stacks_retrains(_config("runtime.evaluate_tickets=at:0.3,0.8"))  # opt-in
    assert not stacks_retrains(_config("runtime.evaluate_tickets=at:0.3", *asked))  # one ticket
    assert not stacks_retrains(_config("runtime.evaluate_tickets=at:0.3,0.8", "prune.rounds=1", *asked))
    assert not stacks_retrains(_config("runtime.evaluate_tickets=at:0.3,0.8", "method=lt", *asked))


def _masks_pruned(sizes: dict[str, int], rule: PruneRule, rounds: int, seed: int = 0) -> list[float]:
    """The sparsity of each round's mask as the pruners make it: prune_by_scores on random scores."""
    generator = torch.Generator().manual_seed(seed)
    mask = {name: torch.ones(size, dtype=torch.bool) for name, size in sizes.items()}
    out = []
    for _ in range(rounds):
        mask = prune_by_scores({n: torch.rand(m.shape, generator=generator) for n, m in mask.items()}, mask, rule)
        out.append(sparsity(mask))
    return out


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("rates", [{"conv": 0.2, "linear": 0.2, "output": 0.2}, {"conv": 0.1, "linear": 0.3,
                                                                                 "output": 0.0}])
def test_round_sparsities_are_those_of_the_masks_pruning_gives(scope, rates):
    sizes = {"a.weight": 150, "b.weight": 1201, "c.weight": 37, "d.weight": 999, "e.weight": 10}
    types = {"a.weight": "conv", "b.weight": "conv", "c.weight": "linear", "d.weight": "linear", "e.weight": "output"}
    rule = PruneRule(types, rates, scope)
    planned = round_sparsities(sizes, rule, 12)
    assert planned == _masks_pruned(sizes, rule, 12)  # exactly: a round removes round(rate x kept) of each pool
    assert planned == sorted(planned) and 0 < planned[0] and planned[-1] < 1
    uniform = PruneRule.uniform(sizes, 0.2)
    assert round_sparsities(sizes, uniform, 3) == _masks_pruned(sizes, uniform, 3)


# ------------------------------------------------------------------ the engine on digits-smoke

FAST = ["prune.rounds=3", "train.epochs=3", "train.milestones=[2]", "runtime.threads=1", "runtime.device=cpu",
        "runtime.precision=float32"]


def _run(out: Path, method: str, form: str, *items: str):
    config = apply_overrides(preset_config("digits-smoke"), [f"method={method}", f"runtime.evaluate_tickets={form}",
                                                             f"runtime.output_dir={out}", *FAST, *items])
    lines: list[str] = []
    return run_experiment(config, lines.append), lines


def _tickets(result) -> list[bool]:
    """Which rounds have a ticket; those, and only those, have their trained weights beside it."""
    folders = [result.output_dir / f"round_{r:02d}" for r in range(3)]
    tickets = [(folder / "ticket.json").exists() for folder in folders]
    assert [(folder / TRAINED_FILE).exists() for folder in folders] == tickets
    return tickets


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """digits-smoke's three rounds' mask sparsities, from a run that retrains no ticket."""
    result, _ = _run(tmp_path_factory.mktemp("none"), "prac", "none")
    return [r.sparsity for r in result.rounds]


def test_only_the_nearest_round_is_retrained(tmp_path, planned):
    from prac.imp.context import build_context

    target = (planned[1] + planned[2]) / 2 - 0.001  # nearer round 1 than round 2
    result, lines = _run(tmp_path, "prac", f"at:{target:.4f}")
    # the sparsities the rounds were chosen by are those of the masks the rounds made
    assert build_context(result.config).round_sparsities() == [r.sparsity for r in result.rounds] == planned
    assert _tickets(result) == [False, True, False]
    accuracy = [r.ticket_test_acc for r in result.rounds]
    assert math.isnan(accuracy[0]) and math.isnan(accuracy[2]) and 0 < accuracy[1] <= 1
    rounds = [line for line in lines if line.startswith("round ") and "| model " in line]
    assert [f"ticket not retrained (runtime.evaluate_tickets=at:{target:.4f})" in line for line in rounds] == \
        [True, False, True]
    assert f"ticket {accuracy[1]:.4f}" in rounds[1]


def test_lt_reads_the_chosen_rounds_ticket_from_its_next_round(tmp_path, planned):
    result, lines = _run(tmp_path, "lt", f"at:{planned[0]:.4f},0.99")  # round 0 (round 1's training), round 2
    assert _tickets(result) == [True, False, True]
    accuracy = [r.ticket_test_acc for r in result.rounds]
    assert not math.isnan(accuracy[0]) and math.isnan(accuracy[1]) and not math.isnan(accuracy[2])
    assert any(line.startswith("round 0: ticket ") and "(round 1's training" in line for line in lines)


def test_the_chosen_rounds_stack_when_asked(tmp_path, planned):
    result, lines = _run(tmp_path, "prac", f"at:0.01,{planned[2]:.4f}", "runtime.stack_tickets=2")
    assert _tickets(result) == [True, False, True]
    assert "retraining the tickets of rounds 0, 2, 2 at a time" in lines
