"""Caches that cannot lie, end to end through `prac-lth run` (real Prefect local mode, real MLflow SQLite):
everything a resume needs is in the output folder; a damaged artifact is recomputed with one line, and
nothing else is; `--recompute STAGE@ROUND` redoes that stage; results of other code are not reused."""
from __future__ import annotations

import re

import pytest

from tests.prefect_homes import migrated_prefect_home
from tests.test_pipeline import Workspace, make_workspace, task_states

pytestmark = pytest.mark.slow

PRESET = "digits-smoke"
ROUNDS = 3
ARGS = ["run", PRESET, "--method", "prac", "--seed", "0", "--set", f"prune.rounds={ROUNDS}",
        "--set", "runtime.evaluate_tickets=none"]
STAGES = ("train-round", "select-cet", "prune", "select-cep")
OTHER_CODE = "0123456789abcdef"


def _stage_states(output: str) -> dict[str, str]:
    states = task_states(output)
    return {f"{stage}-r{r:02d}": states.get(f"{stage}-r{r:02d}") for r in range(ROUNDS) for stage in STAGES}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    ws = make_workspace(tmp_path_factory, "stale")
    ws.run_ok(*ARGS)
    ws.files = ws.round_files()
    return ws


def test_a_resume_needs_only_the_output_folder(ws):
    results = ws.out / ".prefect-results"
    assert results.is_dir() and any(results.iterdir()), "stage results are not in the output folder"
    home_storage = ws.root / "prefect-home" / "storage"
    assert not home_storage.exists() or not any(home_storage.iterdir()), "stage results left in PREFECT_HOME"
    # Another worker: a Prefect home (and temporary server database) of its own, the same output folder.
    other = ws.env(PREFECT_HOME=str(migrated_prefect_home(ws.root / "another-worker-home")))
    result = ws.run_ok(*ARGS, env=other)
    states = _stage_states(result.stdout + result.stderr)
    assert set(states.values()) == {"Cached"}, states
    assert ws.round_files() == ws.files


def test_a_damaged_mask_is_recomputed_with_one_line_and_nothing_else(ws):
    mask = ws.run_dir() / "round_01" / "mask.parquet"
    data = bytearray(mask.read_bytes())
    data[len(data) // 2] ^= 0xFF
    mask.write_bytes(bytes(data))
    result = ws.run_ok(*ARGS)
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if "computed again" in line]
    assert len(lines) == 1 and "checksum differs" in lines[0] and "prune of round 1" in lines[0], lines
    states = _stage_states(output)
    assert states.pop("prune-r01") == "Completed"
    assert set(states.values()) == {"Cached"}, states  # the same bytes again: what reads the mask stays cached
    assert ws.round_files() == ws.files


def test_recompute_a_stage_of_one_round(ws):
    result = ws.run_ok(*ARGS, "--recompute", "select-cep@1")
    states = _stage_states(result.stdout + result.stderr)
    assert states.pop("select-cep-r01") == "Completed"
    assert set(states.values()) == {"Cached"}, states
    assert ws.round_files() == ws.files


def test_bad_recompute_is_one_line(ws):
    result = ws.run(*ARGS, "--recompute", "prune@9")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "--recompute prune@9" in result.stderr and "Traceback" not in result.stderr


def test_results_of_other_code_are_not_reused(ws):
    """runtime.code_version stands for the code (pinned here, as a user reusing results on purpose would):
    under another version every stage runs again, round 0 included, in a parent run of its own."""
    result = ws.run_ok(*ARGS, "--set", f"runtime.code_version={OTHER_CODE}")
    output = result.stdout + result.stderr
    states = _stage_states(output)
    assert "Cached" not in states.values(), states
    assert re.search(r"train\.pt was written by other code or from other data, or is damaged: round 0 is trained again", output)
    assert ws.round_files() == ws.files  # the same code in fact: the same masks and PrAC sets
    parents = ws.runs("experiment")
    codes = {p.data.tags.get("prac.code_version") for p in parents}
    assert len(parents) == 2 and len(codes) == 2 and OTHER_CODE in codes, codes
    for parent in parents:
        assert ws.steps(parent.info.run_id, "test_acc") == list(range(ROUNDS))
