"""The stage table (prac/imp/stage_table.py) is the one declaration of the stages: each entry agrees with its step
function, and the Prefect tasks and `--recompute`'s names are derived from it."""
from __future__ import annotations

import inspect

import pytest

from prac.imp.recompute import STAGES as RECOMPUTE_NAMES
from prac.imp.stage_table import STAGES
from prac_lth.tasks.stage_tasks import STAGE_TASKS


@pytest.mark.parametrize("name", list(STAGES))
def test_an_entry_agrees_with_its_step_function(name):
    stage = STAGES[name]
    parameters = inspect.signature(stage.step).parameters
    positional = [p for p in parameters.values() if p.default is inspect.Parameter.empty]
    # (ctx, [round_index], one reference per declared input)
    assert len(positional) == 1 + stage.per_round + len(stage.inputs), (name, list(parameters))
    assert ("log" in parameters) == bool(stage.progress or stage.warns), name
    assert ("fresh" in parameters) == stage.fresh, name


def test_tasks_and_recompute_names_come_from_the_table():
    assert list(STAGE_TASKS) == list(STAGES) == list(RECOMPUTE_NAMES)
    assert all(task.name == name for name, task in STAGE_TASKS.items())
    assert len({task.task_key for task in STAGE_TASKS.values()}) == len(STAGES)  # Prefect tells them apart
