"""A method added from outside the project (tests/plugins/lowest_loss.py: a selector and a method, registered
through prac.strategies.selectors and prac.strategies.methods, loaded with PRAC_LTH_PLUGINS) runs end to end like the built-in ones:
through the engine, through the flow, and in a comparison with prac and lt."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from prac.artifacts import read_prac_set
from tests.test_pipeline import Workspace, make_workspace

pytestmark = pytest.mark.slow

PLUGINS = Path(__file__).resolve().parent / "plugins"
ARGS = ["digits-smoke", "--seeds", "0", "--set", "prune.rounds=2"]


def _env(ws: Workspace) -> dict[str, str]:
    return ws.env(PRAC_LTH_PLUGINS="lowest_loss", PYTHONPATH=str(PLUGINS))


def _sets(ws: Workspace, method: str, round_index: int):
    (run,) = [p for p in (ws.out / "digits-smoke").iterdir()
              if (p / "config.json").is_file() and json.loads((p / "config.json").read_text())["method"] == method]
    return read_prac_set(run / f"round_{round_index:02d}" / "prac_set.parquet").prac_set


def test_a_plugin_method_runs_through_the_engine_sized_like_prac(tmp_path_factory):
    ws = make_workspace(tmp_path_factory, "extension-engine")
    ws.run_ok("compare", *ARGS, "--methods", "prac,lowest-loss", "--engine-only", env=_env(ws))
    prac, lowest = _sets(ws, "prac", 0), _sets(ws, "lowest-loss", 0)
    assert (prac.in_cet == lowest.in_cet).all()  # round 0 is shared: the same forgotten samples
    assert lowest.in_prac.sum() == prac.in_prac.sum() > 0  # as many as CET ∪ CEP (round 0: CET)
    # The easiest samples, not the forgotten ones: most of what it picks was never forgotten.
    assert (lowest.in_prac & lowest.in_cet).sum() < lowest.in_prac.sum() / 2


def test_a_plugin_method_is_compared_with_prac_and_lt_through_the_flow(tmp_path_factory):
    ws = make_workspace(tmp_path_factory, "extension-flow")
    result = ws.run_ok("compare", *ARGS, "--methods", "prac,lt,lowest-loss", env=_env(ws))
    assert "lowest-loss vs lt:" in result.stdout, result.stdout
    parent = ws.parent_run("lowest-loss")
    assert parent.info.status == "FINISHED"
    assert sorted(m.step for m in ws.client().get_metric_history(parent.info.run_id, "prac_set_size")) == [0, 1]
    assert _sets(ws, "lowest-loss", 1).in_prac.any()


def test_without_the_plugin_the_method_is_unknown_in_one_line(tmp_path_factory):
    ws = make_workspace(tmp_path_factory, "extension-missing")
    result = ws.run("run", "digits-smoke", "--method", "lowest-loss", "--engine-only")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "unknown method 'lowest-loss'" in lines[0], result.stderr
    broken = ws.run("run", "digits-smoke", "--method", "lowest-loss", "--engine-only",
                    env=ws.env(PRAC_LTH_PLUGINS="no_such_module_of_mine"))
    assert broken.returncode == 2
    assert broken.stderr.strip() == ("prac-lth: error: PRAC_LTH_PLUGINS: module 'no_such_module_of_mine' cannot be "
                                     "imported (ModuleNotFoundError: No module named 'no_such_module_of_mine')")
