"""Ticket retrains beside the rounds that follow, through the flow and the real CLI (tests/fault_runs.py): stopped
while a retrain runs in its second process (SIGTERM to the CLI, as `kill PID`), it ends, its
retrain process with it, and the same command resumes the retrain from its epoch checkpoint; the files and the
MLflow values are those of the run that retrained each ticket before the next round. (A SIGKILL at any moment:
tests/test_faults.py; the same resume.)"""
from __future__ import annotations

import signal
import time

import pytest

from prac_lth.deployments import processes

from tests.fault_runs import (PRESET, RUN_TIMEOUT_S, ROUND_METRICS, Space, artifacts, check_one_value_per_round,
                              kill_group, parent_runs, round_values)

pytestmark = pytest.mark.slow

ROUNDS = 2
IN_TURN = ["run", PRESET, "--method", "prac", "--seed", "0", "--set", f"prune.rounds={ROUNDS}",
           "--set", "runtime.evaluate_tickets=all"]
ALONGSIDE = [*IN_TURN, "--set", "runtime.retrain_alongside=true"]
METRICS = (*ROUND_METRICS, "ticket_test_acc")
STOP_S = 120  # generous for a loaded machine: what is checked is that it stops and leaves no process behind


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


def _stopped_while_round0_retrains(space: Space, name: str, stop) -> int:
    proc = space.start(ALONGSIDE, name)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:  # once round 0's ticket retrains in the second process (its epoch checkpoint is there)
        while not list(space.out.glob(f"{PRESET}/*/round_00/retrain.ckpt")):
            assert proc.poll() is None, "ended before its retrain was seen:\n" + space.read(name)[1][-3000:]
            assert time.monotonic() < deadline, "round 0's retrain never started"
            time.sleep(0.05)
        stop(proc)
        proc.wait(timeout=STOP_S)
        left = time.monotonic() + STOP_S
        while processes.group(proc.pid) and time.monotonic() < left:
            time.sleep(0.2)
        assert processes.group(proc.pid) == [], "a process of the run outlived it (its retrain process?)"
    finally:
        kill_group(proc)
    return proc.wait(timeout=60)


def test_stopped_while_a_ticket_retrains_beside_the_next_round_resumes_to_the_in_turn_run(tmp_path):
    in_turn = Space.new(tmp_path / "in-turn")
    in_turn.run_ok(IN_TURN, "run")
    space = Space.new(tmp_path / "alongside")

    assert _stopped_while_round0_retrains(space, "terminated", lambda proc: proc.send_signal(signal.SIGTERM)) == 143
    assert "Traceback" not in "".join(space.read("terminated"))
    output = space.run_ok(ALONGSIDE, "resumed")
    assert "Task run 'retrain-r00' - resumed from" in output  # from its epoch checkpoint, in the second process
    assert "retrained beside the next rounds" in output
    assert _left(space) == _left(in_turn)  # same fingerprint, files and MLflow values, one parent run each
