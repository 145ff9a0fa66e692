"""An experiment's ticket retrains stacked after its last round (runtime.stack_tickets, prac.imp.retrain_queue),
the engine here: the masks and PrAC sets are those of the experiment that retrains each ticket in its round (the
retrains feed nothing), every ticket is written and stamped with its stack, and its accuracy is the ticket alone's
to rounding (tests/test_stacked.py). Through the flow, killed mid-stack and resumed: test_stacked_retrains_flow.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from prac.experiment import run_experiment
from prac.imp.retrain_queue import stacks_retrains
from prac.imp.ticket import load_ticket, ticket_context
from prac.imp.trained_ticket import TRAINED_FILE
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac.training.evaluate import accuracy

ROUNDS = 3


def _config(out: Path, *overrides: str):
    return apply_overrides(preset_config("digits-smoke"), [
        "method=prac", f"prune.rounds={ROUNDS}", "runtime.evaluate_tickets=all", "runtime.threads=1",
        "runtime.device=cpu", "runtime.precision=float32", f"runtime.output_dir={out}", *overrides])


def _files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob(pattern))}


def test_the_engine_stacks_the_retrains_after_the_last_round(tmp_path):
    in_turn = run_experiment(_config(tmp_path / "in-turn"), log=lambda line: None)
    lines: list[str] = []
    stacked = run_experiment(_config(tmp_path / "stacked", "runtime.stack_tickets=2"), lines.append)

    assert in_turn.output_dir.name == stacked.output_dir.name  # one fingerprint: a runtime setting
    for pattern in ("round_*/mask.parquet", "round_*/prac_set.parquet", "round_*/train.pt"):
        assert _files(stacked.output_dir, pattern) == _files(in_turn.output_dir, pattern), pattern
    assert not list(stacked.output_dir.rglob("*.ckpt"))

    # each round said where its ticket comes from; the tickets came after the last round, two at a time
    rounds = [line for line in lines if line.startswith("round ") and "| model " in line]
    assert len(rounds) == ROUNDS and all("ticket: retrained after the last round, stacked" in line for line in rounds)
    assert "retraining the tickets of rounds 0, 1, 2, 2 at a time" in lines
    assert sum("(retrained after the last round, stacked" in line for line in lines) == ROUNDS
    assert lines.index("retraining the tickets of rounds 0, 1, 2, 2 at a time") > lines.index(rounds[-1])

    for r, (alone, together) in enumerate(zip(in_turn.rounds, stacked.rounds)):
        ticket, reference = (json.loads((run.output_dir / f"round_{r:02d}" / "ticket.json").read_text())
                             for run in (stacked, in_turn))
        assert ticket["stack"]["rounds"] == [0, 1, 2] and ticket["source"] == "retrain" and "stack" not in reference
        assert ticket["ticket_iterations"] == reference["ticket_iterations"]
        assert together.ticket_test_acc == pytest.approx(alone.ticket_test_acc, abs=0.05)

    # each ticket of the stack kept its own trained weights, which score its accuracy
    ctx = ticket_context(stacked.config)
    for r in range(ROUNDS):
        ticket = json.loads((stacked.output_dir / f"round_{r:02d}" / "ticket.json").read_text())
        assert ticket["trained"]["file"] == TRAINED_FILE
        trained = load_ticket(ctx, r, trained=True)
        assert accuracy(trained, ctx.data.test, ctx.data, ctx.config.train.channels_last) == ticket["ticket_test_acc"]


def test_which_experiments_stack_their_retrains(tmp_path):
    assert not stacks_retrains(_config(tmp_path))  # one at a time unless asked
    # a CUDA device too: opt-in until bench/gpu_check.sh has passed on a GPU with the stack's fixes
    assert not stacks_retrains(_config(tmp_path, "runtime.device=cuda"))
    assert stacks_retrains(_config(tmp_path, "runtime.device=cuda", "runtime.stack_tickets=2"))
    assert stacks_retrains(_config(tmp_path, "runtime.stack_tickets=4"))
    for other in ("runtime.evaluate_tickets=last", "method=lt", "prune.rounds=1", "runtime.retrain_alongside=true",
                  "runtime.compile=true", "runtime.stack_tickets=1"):
        assert not stacks_retrains(_config(tmp_path, "runtime.stack_tickets=4", other)), other
