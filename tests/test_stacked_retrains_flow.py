"""An experiment's ticket retrains stacked after its last round, through the flow and the real CLI
(tests/fault_runs.py), killed (SIGKILL to its process group) while the stack trains and run again: every ticket of
the stack resumes from its own epoch checkpoint, each round's retrain task is cached under its own key, and the
experiment ends with the masks and PrAC sets of the run that retrains in turn, one MLflow value per round.
The engine's stacking and its figures: tests/test_stacked_retrains.py."""
from __future__ import annotations

import re
import time

import pytest

from tests.fault_runs import (PRESET, RUN_TIMEOUT_S, ROUND_METRICS, Space, artifacts, check_one_value_per_round,
                              kill_group, parent_runs, round_values)

pytestmark = pytest.mark.slow

ROUNDS = 3
IN_TURN = ["run", PRESET, "--method", "prac", "--seed", "0", "--set", f"prune.rounds={ROUNDS}",
           "--set", "runtime.evaluate_tickets=all", "--set", "runtime.precision=float32"]
STACKED = [*IN_TURN, "--set", "runtime.stack_tickets=2"]
METRICS = (*ROUND_METRICS, "ticket_test_acc")


def _left(space: Space) -> tuple[str, dict, dict]:
    """fingerprint, masks and PrAC sets, MLflow values of the one parent run (which finished)."""
    ((fingerprint, run_dir),) = space.run_dirs().items()
    (parent,) = parent_runs(space.client(), fingerprint)
    assert parent.info.status == "FINISHED"
    values = round_values(space.client(), parent.info.run_id, METRICS)
    assert not check_one_value_per_round(values, ROUNDS)
    assert len(list(run_dir.glob("round_*/ticket.json"))) == ROUNDS and not list(run_dir.rglob("*.ckpt"))
    return fingerprint, artifacts(run_dir), values


def test_a_stack_of_retrains_killed_through_the_flow_resumes_every_ticket(tmp_path):
    in_turn = Space.new(tmp_path / "in-turn")
    in_turn.run_ok(IN_TURN, "run")
    space = Space.new(tmp_path / "stacked")

    proc = space.start(STACKED, "killed")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:  # once both tickets of the first stack have an epoch checkpoint
        while len(list(space.out.glob(f"{PRESET}/*/round_0[01]/retrain.ckpt"))) < 2:
            assert proc.poll() is None, "ended before its stack was seen:\n" + space.read("killed")[1][-3000:]
            assert time.monotonic() < deadline, "the stack of retrains never started"
            time.sleep(0.05)
    finally:
        kill_group(proc)
    proc.wait(timeout=60)

    output = space.run_ok([*STACKED, "--verbose"], "resumed")
    assert "retraining the tickets of rounds 0, 1, 2, 2 at a time" in output
    for r in (0, 1):  # the first stack's two tickets, each from its own checkpoint
        assert re.search(rf"resumed from \S+round_0{r}/retrain.ckpt after epoch \d+/\d+ \(ticket of round {r}\)",
                         output), output[-3000:]
    assert "ticket: retrained after the last round, stacked" in output
    again = space.run_ok(STACKED, "again")  # every round's retrain task now cached under its own key
    assert "retraining the tickets" not in again

    fingerprint, files, values = _left(space)
    expected_fingerprint, expected_files, expected_values = _left(in_turn)
    assert (fingerprint, files) == (expected_fingerprint, expected_files)  # the retrains feed no mask or set
    for key in ROUND_METRICS:
        assert values[key] == expected_values[key], key
    tickets, expected_tickets = values["ticket_test_acc"], expected_values["ticket_test_acc"]
    assert [step for step, _ in tickets] == [step for step, _ in expected_tickets]
    assert all(abs(a - b) <= 0.05 for (_, a), (_, b) in zip(tickets, expected_tickets))  # to rounding (test_stacked)
