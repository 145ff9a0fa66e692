"""Ticket retrains beside the rounds that follow, through the flow and the real CLI (tests/fault_runs.py): SIGKILLed
while a retrain runs in its second process, the same command resumes; the files and the MLflow values are those
of the run that retrained each ticket before the next round."""
from __future__ import annotations

import time

import pytest

from tests.fault_runs import (PRESET, RUN_TIMEOUT_S, ROUND_METRICS, Space, artifacts, check_one_value_per_round,
                              kill_group, parent_runs, round_values)

pytestmark = pytest.mark.slow

ROUNDS = 2
IN_TURN = ["run", PRESET, "--method", "prac", "--seed", "0", "--set", f"prune.rounds={ROUNDS}",
           "--set", "runtime.evaluate_tickets=all"]
ALONGSIDE = [*IN_TURN, "--set", "runtime.retrain_alongside=true"]
METRICS = (*ROUND_METRICS, "ticket_test_acc")


def _left(space: Space) -> tuple[str, dict, dict[str, bytes], dict]:
    """fingerprint, masks and PrAC sets, tickets and rounds.json, MLflow values of the one parent run."""
    ((fingerprint, run_dir),) = space.run_dirs().items()
    (parent,) = parent_runs(space.client(), fingerprint)
    assert parent.info.status == "FINISHED"
    values = round_values(space.client(), parent.info.run_id, METRICS)
    assert not check_one_value_per_round(values, ROUNDS)
    files = {str(p.relative_to(run_dir)): p.read_bytes()
             for p in [*run_dir.glob("round_*/ticket.json"), run_dir / "rounds.json"]}
    assert len(files) == ROUNDS + 1 and not list(run_dir.rglob("*.ckpt"))
    return fingerprint, artifacts(run_dir), files, values


def test_killed_while_a_ticket_retrains_beside_the_next_round_resumes_to_the_in_turn_run(tmp_path):
    in_turn = Space.new(tmp_path / "in-turn")
    in_turn.run_ok(IN_TURN, "run")

    space = Space.new(tmp_path / "alongside")
    proc = space.start(ALONGSIDE, "killed")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:  # killed once round 0's ticket retrains in the second process (its epoch checkpoint is there)
        while not list(space.out.glob(f"{PRESET}/*/round_00/retrain.ckpt")):
            assert proc.poll() is None, "ended before its retrain was seen:\n" + space.read("killed")[1][-3000:]
            assert time.monotonic() < deadline, "round 0's retrain never started"
            time.sleep(0.05)
    finally:
        kill_group(proc)  # SIGKILL, the group: the flow, its retrain process, Prefect's temporary server
    proc.wait(timeout=60)
    output = space.run_ok(ALONGSIDE, "resumed")
    assert "retrained beside the next rounds" in output
    assert "Task run 'retrain-r00' - resumed from" in output  # from its epoch checkpoint, in the second process

    assert _left(space) == _left(in_turn)  # same fingerprint, files and MLflow values, one parent run each
