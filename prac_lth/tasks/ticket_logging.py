"""Logging a round's ticket to MLflow as models (LoggedModels) of the experiment's parent run, at step = round, of
two kinds told apart by name and by the tag prac.kind:

- `ticket-rNN` (prac.kind=trained-ticket): the trained ticket, its retrain's best-validation weights
  (prac.imp.ticket.load_ticket(..., trained=True)), the model to deploy; only for the rounds whose ticket was
  retrained (runtime.evaluate_tickets), carrying the round's ticket_test_acc, ticket_best_val_acc, sparsity and
  ticket_bytes (its file's size: kept values and a bit mask) as model metrics.
- `ticket-init-rNN` (prac.kind=ticket-init): the ticket's initialisation m ⊙ θ_rewind (θ_reinit for random-reinit),
  untrained, the weights to train from; every round, with its per-layer sparsity, measured from its zeros, as a
  table (round_NN/ticket_sparsity.json, also written to the run folder).

Idempotent: a resumed or re-run flow finds a round's model of each kind again and never logs a second one. Earlier
versions logged the untrained ticket as `ticket-rNN` (prac.kind=ticket): such a model is never taken for the trained
one, and is deleted once the round's `ticket-init-rNN`, the same weights, is logged."""
from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any, Iterator, Mapping

import mlflow.pytorch
import numpy as np
import pandas as pd
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec
from prefect import task
from torch import nn

from prac.settings.config import ExperimentConfig
from prac.imp.context import ExperimentContext
from prac.imp.trained_ticket import trained_of
from prac.imp.ticket import (SPARSITY_FILE, LayerSparsity, layer_sparsity, load_ticket, report_ticket,
                             ticket_start_name, total_sparsity)
from prac.layout.run_paths import run_paths
from prac_lth.tasks import tracking
from prac_lth.tasks.context import experiment_context

_RUN_TAGS = ("prac.method", "prac.seed", "prac.fingerprint")


@dataclass(frozen=True)
class ModelKind:
    """A kind of ticket model: its name, `<prefix>-rNN`, and its tag prac.kind."""
    prefix: str
    tag: str


TRAINED = ModelKind("ticket", "trained-ticket")  # the model a user deploys
INIT = ModelKind("ticket-init", "ticket-init")  # the weights a ticket trains from
LEGACY_TAG = "ticket"  # earlier versions' ticket-rNN: the untrained ticket, under the trained ticket's name
TRAINED_METRICS = ("ticket_test_acc", "ticket_best_val_acc")  # from ticket.json, with the round's sparsity


@task(name="log-ticket-init", task_run_name="log-ticket-init-r{round_index:02d}")
def log_ticket_init_task(config: ExperimentConfig, experiment_id: str, run_id: str, round_index: int) -> str:
    """The round's ticket m ⊙ θ_rewind and its sparsity report; returns the MLflow model's id."""
    return log_round_ticket(experiment_context(config), experiment_id, run_id, round_index)


@task(name="log-trained-ticket", task_run_name="log-trained-ticket-r{round_index:02d}")
def log_trained_ticket_task(config: ExperimentConfig, experiment_id: str, run_id: str, round_index: int) -> str:
    """The round's trained ticket (its ticket retrained); returns the MLflow model's id."""
    return log_trained_ticket(experiment_context(config), experiment_id, run_id, round_index)


def log_round_ticket(ctx: ExperimentContext, experiment_id: str, run_id: str, round_index: int) -> str:
    """`ticket-init-rNN` and the sparsity table; an earlier version's untrained `ticket-rNN` of the round then goes."""
    ticket, layers = report_ticket(ctx, round_index)
    # Replaced, not appended, when logged again: one table per round.
    tracking.log_table(run_id, pd.DataFrame([asdict(row) for row in layers]),
                       f"{tracking.round_artifact_dir(round_index)}/{SPARSITY_FILE}")
    start = ticket_start_name(ctx)
    model_id = log_ticket_model(
        experiment_id, run_id, round_index, INIT, ticket, ctx,
        {"ticket": f"this round's mask applied to {start} (untrained: the weights to train from)", "trained": False},
        layers, {"sparsity": total_sparsity(layers)})
    for legacy in find_ticket_model(experiment_id, run_id, round_index, TRAINED, tag=LEGACY_TAG):
        tracking.client().delete_logged_model(legacy.model_id)
    return model_id


def log_trained_ticket(ctx: ExperimentContext, experiment_id: str, run_id: str, round_index: int) -> str:
    """`ticket-rNN`: the round's trained ticket, with the accuracies its ticket.json records (a round whose ticket
    was not retrained is a UserError, from load_ticket)."""
    found = ready_model(find_ticket_model(experiment_id, run_id, round_index, TRAINED))
    if found:  # not even loaded again
        return found
    ticket = load_ticket(ctx, round_index, trained=True)  # verifies ticket.json and the weights it records
    ticket_json = run_paths(ctx.config).round(round_index) / "ticket.json"
    recorded = json.loads(ticket_json.read_text())
    accuracies = {key: float(recorded[key]) for key in TRAINED_METRICS}
    start = ticket_start_name(ctx)
    about = {"ticket": f"this round's mask applied to {start}, trained: its retrain's best-validation weights",
             "trained": True, "source": recorded.get("source"), **accuracies}
    layers = layer_sparsity(ticket)
    size = trained_of(ticket_json)[0].stat().st_size  # kept values and a bit mask: what a user copies
    return log_ticket_model(experiment_id, run_id, round_index, TRAINED, ticket, ctx, about, layers,
                            {**accuracies, "sparsity": total_sparsity(layers), "ticket_bytes": float(size)})


def model_name(round_index: int, kind: ModelKind) -> str:
    return f"{kind.prefix}-r{round_index:02d}"


def find_ticket_model(experiment_id: str, run_id: str, round_index: int, kind: ModelKind,
                      tag: str | None = None) -> list:
    """The LoggedModels of round `round_index`'s ticket of `kind` of run `run_id` (deleted ones left out); `tag`:
    those of that prac.kind under the kind's name instead."""
    return list(tracking.client().search_logged_models(
        [experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{model_name(round_index, kind)}' "
                                       f"AND tags.`prac.kind` = '{tag or kind.tag}'"))


def ready_model(found: list) -> str | None:
    """The id of the finished one of `found` (find_ticket_model), if any."""
    return next((model.model_id for model in found if model.status == LoggedModelStatus.READY), None)


def log_ticket_model(experiment_id: str, run_id: str, round_index: int, kind: ModelKind, ticket: nn.Module,
                     ctx: ExperimentContext, about: Mapping[str, Any], layers: list[LayerSparsity],
                     metrics: Mapping[str, float]) -> str:
    """Log `ticket` as an MLflow model of `kind` of run `run_id` unless a finished one is there; returns its id.
    `about` joins its metadata; `metrics` are its metrics (at step = round), and no others.

    The LoggedModel is created here, in the run's experiment and linked to the run (its source run, and the run's
    output at step = round), and handed to `log_model` by id: MLflow would otherwise put a model it creates itself
    in the default (or active) experiment, and nothing here may touch MLflow's global active run. `log_model` gets
    no run: given one, it would attach all of the run's metrics at the step to the model (a ticket-init model would
    carry the trained ticket's accuracy, and the trained ticket the accuracy of the round's training), reading the
    history of every metric of the run to do so. MLflow leaves its models PENDING; READY marks one whose upload
    finished, so a model still PENDING is what an interrupted attempt left: it is deleted and logged again.
    """
    c = tracking.client()
    found = find_ticket_model(experiment_id, run_id, round_index, kind)
    if ready := ready_model(found):
        return ready
    for stale in found:
        c.delete_logged_model(stale.model_id)
    run = c.get_run(run_id)
    tags = {key: run.data.tags[key] for key in _RUN_TAGS if key in run.data.tags}
    name = model_name(round_index, kind)
    model = c.create_logged_model(experiment_id, name=name, source_run_id=run_id,
                                  tags={**tags, "prac.kind": kind.tag, "prac.round": str(round_index)},
                                  params=run.data.params)
    c.log_outputs(run_id, models=[LoggedModelOutput(model.model_id, step=round_index)])
    tracking.log_model_metrics(run_id, model.model_id, round_index, metrics)
    with _quiet_pickle_warning(), tracking.server_calls():
        mlflow.pytorch.log_model(
            ticket, name=name, model_id=model.model_id,
            # pickle: users load the project's own module class (its layers by name), in one call; pt2
            # would need an example input and trace a graph without those modules.
            serialization_format="pickle", pip_requirements=pip_requirements(),
            signature=_signature(ctx), metadata={**about, **_metadata(ctx, round_index, layers)})
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
    return {"round": round_index, "fingerprint": ctx.fingerprint, "sparsity": total_sparsity(layers),
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
