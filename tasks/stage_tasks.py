"""One Prefect task per stage. Thin: build (or reuse) the context, call the engine's step, which
loads its input artifacts, computes, writes its outputs atomically and returns references."""
from __future__ import annotations

import time
from typing import Any, Callable

from prefect import get_run_logger, task

from prac import imp_steps
from prac.artifacts.refs import ArtifactRef
from prac.round_record import RoundRecord, round_record
from tasks.context import experiment_context

Config = dict[str, Any]
_STAGE = {"persist_result": True, "retries": 0}


PROGRESS_EVERY_S = 30.0


def _epoch_log(config: Config) -> Callable[[str], None]:
    """Epoch lines to the Prefect log (terminal and UI): every one when verbose, else one every
    PROGRESS_EVERY_S seconds, so a long round shows where it is without flooding short ones. Other lines
    (resumed, started afresh) always."""
    logger = get_run_logger()
    if config["runtime"]["verbose"]:
        return logger.info
    last = [time.monotonic()]

    def throttled(line: str) -> None:
        if not line.startswith("epoch ") or time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            logger.info(line)

    return throttled


@task(name="prepare-run", **_STAGE)
def prepare_run_task(config: Config) -> ArtifactRef:
    return imp_steps.prepare_run(experiment_context(config))


@task(name="train-round", task_run_name="train-round-r{round_index:02d}", **_STAGE)
def train_round_task(config: Config, round_index: int, mask: ArtifactRef | None,
                     prac_set: ArtifactRef | None, fresh: bool = False) -> ArtifactRef:
    return imp_steps.train_round_step(experiment_context(config), round_index, mask, prac_set, _epoch_log(config),
                                      fresh=fresh)


@task(name="dense-predictions", **_STAGE)
def dense_predictions_task(config: Config, round0: ArtifactRef) -> ArtifactRef:
    return imp_steps.dense_predictions_step(experiment_context(config), round0)


@task(name="select-cet", task_run_name="select-cet-r{round_index:02d}", **_STAGE)
def select_cet_task(config: Config, round_index: int, train: ArtifactRef, prac_set: ArtifactRef | None) -> ArtifactRef:
    return imp_steps.select_cet_step(experiment_context(config), round_index, train, prac_set)


@task(name="prune", task_run_name="prune-r{round_index:02d}", **_STAGE)
def prune_task(config: Config, round_index: int, train: ArtifactRef, mask: ArtifactRef | None) -> ArtifactRef:
    return imp_steps.prune_step(experiment_context(config), round_index, train, mask)


@task(name="select-cep", task_run_name="select-cep-r{round_index:02d}", **_STAGE)
def select_cep_task(config: Config, round_index: int, train: ArtifactRef, cet: ArtifactRef,
                    dense: ArtifactRef | None) -> ArtifactRef:
    return imp_steps.select_cep_step(experiment_context(config), round_index, train, cet, dense,
                                     get_run_logger().warning)


@task(name="retrain", task_run_name="retrain-r{round_index:02d}", **_STAGE)
def retrain_task(config: Config, round_index: int, mask: ArtifactRef, fresh: bool = False) -> ArtifactRef:
    return imp_steps.retrain_step(experiment_context(config), round_index, mask, _epoch_log(config), fresh=fresh)


@task(name="ticket-from-next-round", task_run_name="ticket-from-next-round-r{round_index:02d}", **_STAGE)
def ticket_from_next_round_task(config: Config, round_index: int, next_train: ArtifactRef) -> ArtifactRef:
    return imp_steps.ticket_from_next_round_step(experiment_context(config), round_index, next_train)


def record_of_round(config: Config, round_index: int, train: ArtifactRef, mask: ArtifactRef,
                    previous_sparsity: float, prac_set: ArtifactRef, ticket: ArtifactRef | None,
                    cumulative_before: int) -> RoundRecord:
    """Not a task: reading a few small files back is cheaper than a task run."""
    return round_record(experiment_context(config), round_index, train, mask, previous_sparsity, prac_set, ticket,
                        cumulative_before)
