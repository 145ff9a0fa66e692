"""The trained ticket a comparison recommends, per method, in MLflow's Model Registry (MLflow 3 aliases, not stages).

The registered model `prac-lth-<preset>-<method>` gets one version per recommended ticket: the LoggedModel
`ticket-rNN` (the trained ticket, prac_lth.tasks.ticket_logging) of the seed and round prac.reporting.best_tickets
chose. The alias `best` points at the version the latest comparison chose; the version's tags say which comparison
and why (round, seed, sparsity, rule); the model carries its batch-1 CPU latency (latency_us, dense_latency_us,
latency_threads: prac.export.ticket_latency) beside the size and accuracy its experiment logged. Idempotent: a ticket registered before is found again by its LoggedModel's
id, never registered twice. `models:/prac-lth-<preset>-<method>@best` loads it (mlflow.pytorch.load_model)."""
from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

from prac.layout.fingerprint import fingerprint
from prac.reporting.best_tickets import BestTicket
from prac.settings.config import ExperimentConfig
from prac_lth.tasks import tracking, tracking_runs
from prac_lth.tasks.ticket_logging import TRAINED, find_ticket_model, ready_model

ALIAS = "best"
MODEL_ID_TAG = "prac.model_id"


def registered_name(preset: str, method: str) -> str:
    return f"prac-lth-{preset}-{method}"


def register_best(experiment_id: str, comparison_run_id: str, preset: str, tickets: list[BestTicket],
                  configs: list[ExperimentConfig]) -> dict[str, str]:
    """Register each of `tickets` and point its model's alias `best` at it; returns {method: 'name@version'}. A
    ticket whose trained-ticket model is not in MLflow (its experiment ran without tracking) is left out."""
    runs = tracking_runs.experiment_runs(experiment_id, sorted({fingerprint(c) for c in configs}))
    registered = {}
    for ticket in tickets:
        config = next(c for c in configs if c.method == ticket.method and c.seed == ticket.seed)
        run = runs.get(fingerprint(config))
        model_id = run and ready_model(find_ticket_model(experiment_id, run.info.run_id, ticket.round, TRAINED))
        if not model_id:
            continue
        name = registered_name(preset, ticket.method)
        version = _version(name, model_id, run.info.run_id)
        c = tracking.client()
        for key, value in {"prac.comparison_run": comparison_run_id, "prac.round": ticket.round,
                           "prac.seed": ticket.seed, "prac.sparsity": f"{ticket.sparsity:.4f}",
                           "prac.rule": ticket.rule}.items():
            c.set_model_version_tag(name, version, key, str(value))
        c.set_registered_model_alias(name, ALIAS, version)
        tracking.log_model_metrics(run.info.run_id, model_id, ticket.round, {
            "latency_us": ticket.latency_us, "dense_latency_us": ticket.dense_latency_us,
            "latency_threads": float(ticket.latency_threads)})
        registered[ticket.method] = f"{name}@{version}"
    return registered


def _version(name: str, model_id: str, run_id: str) -> str:
    """The version of `name` holding LoggedModel `model_id`, created if there is none."""
    c = tracking.client()
    try:
        c.create_registered_model(name, description="prac-lth: the trained ticket its comparisons recommend "
                                                    "(alias best: the latest comparison's)")
    except MlflowException as error:
        if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    for version in c.search_model_versions(f"name = '{name}'"):
        if version.tags.get(MODEL_ID_TAG) == model_id:
            return version.version
    return c.create_model_version(name, source=f"models:/{model_id}", run_id=run_id, model_id=model_id,
                                  tags={MODEL_ID_TAG: model_id}).version
