"""Ticket retrains beside the rounds that follow (runtime.retrain_alongside): the retrain of round r runs in a
second process while round r+1 trains, and the experiment ends with the files and records of the order one after
another (prac/imp/imp_loop.py). The engine here; the flow, MLflow and a kill mid-retrain in
test_retrain_alongside_flow.py."""
from __future__ import annotations

import json
from pathlib import Path

from prac.experiment import run_experiment
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config

ROUNDS = 3


def _config(out: Path, *overrides: str):
    return apply_overrides(preset_config("digits-smoke"), [
        "method=prac", f"prune.rounds={ROUNDS}", "runtime.evaluate_tickets=all", "runtime.threads=1",
        f"runtime.output_dir={out}", *overrides])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_engine_retrains_beside_the_next_rounds_and_ends_with_the_same_files(tmp_path):
    in_turn = run_experiment(_config(tmp_path / "in-turn"), log=lambda line: None)
    lines: list[str] = []
    alongside = run_experiment(_config(tmp_path / "alongside", "runtime.retrain_alongside=true"), lines.append)

    # Its tickets came after their rounds: each round was recorded before its retrain ended
    late = [line for line in lines if "(retrained beside the next rounds" in line]
    assert len(late) == ROUNDS, lines
    assert all("ticket: retraining beside the next rounds" in line for line in lines if line.startswith("round ")
               and "| model " in line), lines
    assert [r.ticket_test_acc for r in alongside.rounds] == [r.ticket_test_acc for r in in_turn.rounds]
    assert all(r.ticket_test_acc == r.ticket_test_acc for r in alongside.rounds)  # none left nan

    # Every file of the run byte for byte (masks, PrAC sets, tickets, round files, rounds.json), none left over
    # (no retrain checkpoint)
    expected, got = _files(in_turn.output_dir), _files(alongside.output_dir)
    assert in_turn.output_dir.name == alongside.output_dir.name  # one fingerprint: the setting is not science
    assert sorted(got) == sorted(expected)
    assert all(f"round_{r:02d}/ticket.json" in got for r in range(ROUNDS))
    assert not any(name.endswith(".ckpt") for name in got)
    assert [name for name in expected if got[name] != expected[name]] == ["config.json"]
    # config.json differs in where and how it ran only
    configs = [json.loads(files["config.json"]) for files in (expected, got)]
    for config in configs:
        del config["runtime"]["output_dir"], config["runtime"]["retrain_alongside"]
    assert configs[0] == configs[1]
