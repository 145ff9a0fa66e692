"""Logging a round's ticket to MLflow: its per-layer sparsity, measured from its zeros, as a table
(round_NN/ticket_sparsity.json, also written to the run folder), and the ticket m ⊙ θ_rewind itself
(θ_reinit for random-reinit) as an MLflow model (a LoggedModel named ticket-rNN) of the experiment's
parent run, at step = round.
Idempotent: a resumed or re-run flow finds the round's model again and never logs a second one."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from importlib import metadata
from typing import Any, Iterator

import mlflow.pytorch
import numpy as np
import pandas as pd
from mlflow.entities import LoggedModelStatus
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec
from prefect import task
from torch import nn

from prac.settings.config import ExperimentConfig
from prac.imp.context import ExperimentContext
from prac.imp.ticket import SPARSITY_FILE, LayerSparsity, report_ticket, ticket_start_name, total_sparsity
from prac_lth.tasks import tracking
from prac_lth.tasks.context import experiment_context

_RUN_TAGS = ("prac.method", "prac.seed", "prac.fingerprint")


@task(name="log-ticket-model", task_run_name="log-ticket-model-r{round_index:02d}")
def log_ticket_model_task(config: ExperimentConfig, experiment_id: str, run_id: str, round_index: int) -> str:
    """The round's ticket and its sparsity report; returns the MLflow model's id."""
    return log_round_ticket(experiment_context(config), experiment_id, run_id, round_index)


def log_round_ticket(ctx: ExperimentContext, experiment_id: str, run_id: str, round_index: int) -> str:
    ticket, layers = report_ticket(ctx, round_index)
    # Replaced, not appended, when logged again: one table per round.
    tracking.log_table(run_id, pd.DataFrame([asdict(row) for row in layers]),
                       f"{tracking.round_artifact_dir(round_index)}/{SPARSITY_FILE}")
    return log_ticket_model(experiment_id, run_id, round_index, ticket, ctx, layers)


def model_name(round_index: int) -> str:
    return f"ticket-r{round_index:02d}"


def find_ticket_model(experiment_id: str, run_id: str, round_index: int) -> list:
    """The LoggedModels of round `round_index`'s ticket of run `run_id` (deleted ones left out)."""
    return list(tracking.client().search_logged_models(
        [experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{model_name(round_index)}'"))


def log_ticket_model(experiment_id: str, run_id: str, round_index: int, ticket: nn.Module,
                     ctx: ExperimentContext, layers: list[LayerSparsity]) -> str:
    """Log `ticket` as an MLflow model of run `run_id` unless a finished one is there; returns its id.

    The LoggedModel is created here, in the run's experiment and linked to the run, and handed to
    `log_model` by id with an explicit `run_id`: MLflow would otherwise put a model it creates itself in
    the default (or active) experiment, and nothing here may touch MLflow's global active run. MLflow
    leaves its models PENDING; READY marks one whose upload finished, so a model still PENDING is what an
    interrupted attempt left: it is deleted and logged again.
    """
    c = tracking.client()
    found = find_ticket_model(experiment_id, run_id, round_index)
    for model in found:
        if model.status == LoggedModelStatus.READY:
            return model.model_id
    for stale in found:
        c.delete_logged_model(stale.model_id)
    run = c.get_run(run_id)
    tags = {key: run.data.tags[key] for key in _RUN_TAGS if key in run.data.tags}
    model = c.create_logged_model(experiment_id, name=model_name(round_index), source_run_id=run_id,
                                  tags={**tags, "prac.kind": "ticket", "prac.round": str(round_index)},
                                  params=run.data.params)
    with _quiet_pickle_warning(), tracking.server_calls():
        mlflow.pytorch.log_model(
            ticket, name=model_name(round_index), model_id=model.model_id, run_id=run_id, step=round_index,
            # pickle: users load the project's own module class (its layers by name), in one call; pt2
            # would need an example input and trace a graph without those modules.
            serialization_format="pickle", pip_requirements=pip_requirements(),
            signature=_signature(ctx), metadata=_metadata(ctx, round_index, layers))
    c.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model.model_id


def pip_requirements() -> list[str]:
    """Given explicitly, so MLflow does not spend seconds inferring them: unpickling the ticket needs
    torch, cloudpickle (MLflow's pickle module) and this project (the model classes)."""
    return [f"{name}=={_version(name)}" if _version(name) else name for name in ("torch", "cloudpickle", "prac-lth")]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution).split("+")[0]  # a local tag (+cu130) is no pip version
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        return None


def _signature(ctx: ExperimentContext) -> ModelSignature:
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *ctx.data.image_shape))]),
                          outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, ctx.data.num_classes))]))


def _metadata(ctx: ExperimentContext, round_index: int, layers: list[LayerSparsity]) -> dict[str, Any]:
    start = ticket_start_name(ctx)
    return {"ticket": f"this round's mask applied to {start} (untrained: the weights to train from)",
            "round": round_index, "fingerprint": ctx.fingerprint, "sparsity": total_sparsity(layers),
            "input": "float32 NCHW: (uint8 pixels / 255 - mean) / std, per channel",
            "mean": ctx.data.mean.flatten().tolist(), "std": ctx.data.std.flatten().tolist()}


@contextlib.contextmanager
def _quiet_pickle_warning() -> Iterator[None]:
    """MLflow warns at every pickled model that unpickling runs code; the format is chosen on purpose
    (the model is this project's own), and a warning per round would bury the round lines."""
    logger = logging.getLogger("mlflow.pytorch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
