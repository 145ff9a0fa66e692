"""Logging a finished round to MLflow: per-round metrics (step = round) on the parent run, the
round's per-epoch curves on a nested child run, and its Parquet artifacts under round_NN/.
Idempotent: a resumed or re-run flow never logs a value twice."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from prefect import task

from prac.artifacts.refs import ArtifactRef, checked_path
from prac.round_file import load_round
from prac_lth.tasks import tracking, tracking_runs
from prac_lth.tasks.context import experiment_context
from prac.imp_steps import arm_snapshot

_CURVES = ("train_loss", "train_acc", "val_acc", "mask_distance", "lr")


@task(name="log-round", task_run_name="log-round-r{round_index:02d}")
def log_round_task(config: dict[str, Any], experiment_id: str, run_id: str, round_index: int,
                   metrics: dict[str, float], train: ArtifactRef, artifacts: list[ArtifactRef]) -> None:
    tracking.log_round_metrics(run_id, round_index, metrics)
    ctx = experiment_context(config)
    result = load_round(checked_path(train))
    snap, _ = arm_snapshot(ctx, result, round_index)
    # The arm's view of round 0 may end early: its curves end where it stopped.
    curves = [{k: row[k] for k in _CURVES} for row in result.curves[: snap.epochs_run]]
    child = tracking_runs.round_child_run(experiment_id, run_id, round_index)
    tracking.log_epoch_curves(child, curves)
    tracking.finish_run(child)
    tracking.log_round_artifacts(run_id, round_index, [Path(checked_path(ref)) for ref in artifacts])


@task(name="log-ticket", task_run_name="log-ticket-r{round_index:02d}")
def log_ticket_task(run_id: str, round_index: int, ticket_test_acc: float) -> None:
    if not math.isnan(ticket_test_acc):
        tracking.log_round_metrics(run_id, round_index, {"ticket_test_acc": ticket_test_acc})
