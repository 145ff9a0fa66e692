"""One Prefect task per stage of prac.imp.stage_table. Thin: build (or reuse) the context, call the engine's step,
which loads its input artifacts, computes, writes its outputs atomically and returns references."""
from __future__ import annotations

import time
from typing import Callable

from prefect import Task, get_run_logger, task

from prac.imp import imp_steps
from prac.artifacts.refs import ArtifactRef
from prac.settings.config import ExperimentConfig
from prac.imp.round_record import RoundRecord, round_record
from prac.imp.stage_table import STAGES, Stage
from prac_lth.tasks.context import experiment_context

_STAGE = {"persist_result": True, "retries": 0}


PROGRESS_EVERY_S = 30.0


def _epoch_log(config: ExperimentConfig) -> Callable[[str], None]:
    """Epoch lines to the Prefect log (terminal and UI): every one when verbose, else one every
    PROGRESS_EVERY_S seconds, so a long round shows where it is without flooding short ones. Other lines
    (resumed, started afresh) always."""
    logger = get_run_logger()
    if config.runtime.verbose:
        return logger.info
    last = [time.monotonic()]

    def throttled(line: str) -> None:
        if not line.startswith("epoch ") or time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            logger.info(line)

    return throttled


@task(name="prepare-run", **_STAGE)
def prepare_run_task(config: ExperimentConfig) -> ArtifactRef:
    return imp_steps.prepare_run(experiment_context(config), get_run_logger().warning)


def _stage_task(stage: Stage) -> Task:
    """The Prefect task of one stage of prac.imp.stage_table (named after it; the cache key reads `inputs`)."""
    def run(config: ExperimentConfig, round_index: int | None, inputs: dict[str, ArtifactRef | None],
            fresh: bool = False, stack_with: dict[int, ArtifactRef] | None = None) -> ArtifactRef:
        # stack_with (prac.imp.retrain_queue) is not in the cache key: the stage's output is round_index's own
        return stage.call(experiment_context(config), round_index, inputs, progress=_epoch_log(config),
                          warn=get_run_logger().warning, fresh=fresh, stack_with=stack_with)

    run.__name__ = run.__qualname__ = f"{stage.name.replace('-', '_')}_task"  # Prefect's task key: one per stage
    named = {"task_run_name": f"{stage.name}-r{{round_index:02d}}"} if stage.per_round else {}
    return task(run, name=stage.name, **named, **_STAGE)


STAGE_TASKS: dict[str, Task] = {name: _stage_task(stage) for name, stage in STAGES.items()}


def record_of_round(config: ExperimentConfig, round_index: int, train: ArtifactRef, mask: ArtifactRef,
                    previous_sparsity: float, prac_set: ArtifactRef, ticket: ArtifactRef | None,
                    cumulative_before: int) -> RoundRecord:
    """Not a task: reading a few small files back is cheaper than a task run."""
    return round_record(experiment_context(config), round_index, train, mask, previous_sparsity, prac_set, ticket,
                        cumulative_before)
