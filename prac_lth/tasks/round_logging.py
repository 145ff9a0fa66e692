"""Logging a finished round to MLflow: per-round metrics (step = round) on the parent run, the
round's per-epoch curves on a nested child run, its Parquet artifacts under round_NN/, and the samples it trained
on as the parent run's dataset input (prac_lth/tasks/dataset_inputs.py).
Idempotent: a resumed or re-run flow never logs a value twice."""
from __future__ import annotations

import math
from pathlib import Path

from prefect import task

from prac.artifacts.refs import ArtifactRef, checked_path
from prac.training.round_file import load_round
from prac_lth.tasks import dataset_inputs, tracking, tracking_runs

_CURVES = ("train_loss", "train_acc", "val_acc", "mask_distance", "lr")


@task(name="log-round", task_run_name="log-round-r{round_index:02d}")
def log_round_task(experiment_id: str, run_id: str, round_index: int, metrics: dict[str, float],
                   train: ArtifactRef, mask: ArtifactRef, prac_set: ArtifactRef) -> None:
    """`metrics`: the round's record (prac.imp.round_record), whose epochs_run is the arm's own view of the round
    (round 0, shared, may have stopped early for this arm): its curves end where it stopped."""
    tracking.log_round_metrics(run_id, round_index, metrics)
    curves = load_round(checked_path(train)).curves[: int(metrics["epochs_run"])]
    child = tracking_runs.round_child_run(experiment_id, run_id, round_index)
    tracking.log_epoch_curves(child, [{k: row[k] for k in _CURVES} for row in curves])
    tracking.finish_run(child)
    tracking.log_round_artifacts(run_id, round_index, [Path(checked_path(ref)) for ref in (mask, prac_set)])
    dataset_inputs.log_trained_set(run_id, round_index, Path(checked_path(prac_set)))


@task(name="log-ticket", task_run_name="log-ticket-r{round_index:02d}")
def log_ticket_task(run_id: str, round_index: int, ticket_test_acc: float) -> None:
    if not math.isnan(ticket_test_acc):
        tracking.log_round_metrics(run_id, round_index, {"ticket_test_acc": ticket_test_acc})
