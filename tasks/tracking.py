"""MLflow logging for the pipeline (DESIGN.md §3): plain functions over ``MlflowClient``.

Every function builds its own ``MlflowClient(tracking_uri=tracking_uri())`` and takes explicit run
ids, so nothing relies on MLflow's global active run and several tasks or processes can log side by
side. Everything is idempotent: a resumed or re-run flow finds its experiment, parent run and round
runs again, and never logs a metric value twice at one step nor re-uploads an identical artifact.
Run lookup and creation live in ``tasks.tracking_runs`` and are re-exported here; ``run_link`` and
``ui_command`` tell users where to see a run in the MLflow UI.
"""
from __future__ import annotations

import json
import math
import os
import posixpath
import shlex
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

from prac.errors import ArtifactError, UserError, one_line

EXPERIMENT_PREFIX = "prac-lth/"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # MLflow 3's UI then opens on the runs, not GenAI
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # where mlflow.load_table looks for tables
HEALTH_TIMEOUT_S = 5.0
_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else MLflow's own default.

    MLflow 3 resolves its default to an absolute ``sqlite:///<cwd>/mlflow.db`` (or to ``./mlruns``
    as a file store when that folder already holds old file-store experiments).
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()


def client() -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri())


def check_tracking_reachable(uri: str | None = None) -> None:
    """Fail fast, with a one-line ``UserError``, when the tracking store cannot be used."""
    uri = uri or tracking_uri()
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
                if response.status != 200:
                    raise UserError(f"MLflow tracking server {uri} is unreachable (HTTP {response.status} from /health)")
        except UserError:
            raise
        except urllib.error.HTTPError as exc:
            raise UserError(f"MLflow tracking server {uri} is unreachable (HTTP {exc.code} from /health)") from None
        except urllib.error.URLError as exc:
            raise UserError(f"MLflow tracking server {uri} is unreachable ({one_line(exc, 300)})") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"MLflow tracking server {uri} is unreachable ({one_line(exc, 300)})") from None
        return
    try:  # sqlite, postgresql, file stores...: opening the store creates or migrates the schema
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot use this store"
        raise UserError(f"MLflow tracking store {uri} cannot be opened ({one_line(exc, 300)})") from None


def experiment_name(preset: str) -> str:
    return EXPERIMENT_PREFIX + preset


def ensure_experiment(preset: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``prac-lth/<preset>``, created (and tagged for MLflow 3's UI) if missing."""
    c = client()
    name = experiment_name(preset)
    experiment = c.get_experiment_by_name(name)
    if experiment is None:
        try:
            return c.create_experiment(name, artifact_location=artifact_location,
                                       tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except mlflow.exceptions.MlflowException:
            experiment = c.get_experiment_by_name(name)  # another process created it meanwhile
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise UserError(
            f"MLflow experiment {name!r} (id {experiment.experiment_id}) is deleted: restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or purge it (mlflow gc)"
        )
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        c.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return experiment.experiment_id


def finish_run(run_id: str, status: str = "FINISHED") -> None:
    """End a run (``FINISHED``, ``FAILED`` or ``KILLED``)."""
    client().set_terminated(run_id, status=status)


def _new_metrics(c: MlflowClient, run_id: str, rows: Iterable[tuple[str, int, object]]) -> list[Metric]:
    """Metrics for (key, step, value) rows that have no value at that step yet; NaN/None skipped."""
    now = int(time.time() * 1000)
    seen: dict[str, set[int]] = {}
    out: list[Metric] = []
    for key, step, value in rows:
        if value is None:
            continue
        value = float(value)
        if math.isnan(value):
            continue
        if key not in seen:
            seen[key] = {m.step for m in c.get_metric_history(run_id, key)}
        if step in seen[key]:
            continue
        seen[key].add(step)
        out.append(Metric(key=key, value=value, timestamp=now, step=int(step)))
    return out


def _log_metrics(c: MlflowClient, run_id: str, metrics: list[Metric]) -> bool:
    for start in range(0, len(metrics), _METRICS_PER_BATCH):
        c.log_batch(run_id, metrics=metrics[start : start + _METRICS_PER_BATCH])
    return bool(metrics)


def log_round_metrics(run_id: str, round_index: int, metrics: Mapping[str, float]) -> bool:
    """Log ``metrics`` at ``step=round_index``, skipping keys that already have a value there
    (and NaN). Returns whether anything was logged."""
    c = client()
    return _log_metrics(c, run_id, _new_metrics(c, run_id, ((k, round_index, v) for k, v in metrics.items())))


def log_epoch_curves(child_run_id: str, curves: list[Mapping[str, float]]) -> bool:
    """Per-epoch curves on a round's child run: ``curves[e]`` holds epoch ``e``'s metrics
    (``train_loss``, ``train_acc``, ``val_acc``, ``mask_distance``, ``lr``), logged at ``step=e``
    unless already there. Returns whether anything was logged."""
    c = client()
    rows = ((k, epoch, v) for epoch, row in enumerate(curves) for k, v in row.items())
    return _log_metrics(c, child_run_id, _new_metrics(c, child_run_id, rows))


def round_artifact_dir(round_index: int) -> str:
    return f"round_{round_index:02d}"


def log_round_artifacts(run_id: str, round_index: int, paths: Iterable[Path]) -> list[str]:
    """Log files under ``round_NN/``, skipping those already there with the same size.
    Returns the artifact paths that were uploaded."""
    c = client()
    folder = round_artifact_dir(round_index)
    existing = {f.path: f.file_size for f in c.list_artifacts(run_id, folder) if not f.is_dir}
    uploaded = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ArtifactError(f"cannot log artifact {path}: no such file")
        target = f"{folder}/{path.name}"
        if existing.get(target) == path.stat().st_size:
            continue
        c.log_artifact(run_id, str(path), artifact_path=folder)
        uploaded.append(target)
    return uploaded


def log_table(run_id: str, table, artifact_file: str) -> None:
    """Log a DataFrame as a table artifact (``.json`` split orient, or ``.parquet``) that
    ``mlflow.load_table`` reads back. Unlike ``MlflowClient.log_table``, which appends to an existing
    table, this replaces it, so logging the same table twice leaves one copy."""
    if not artifact_file.endswith((".json", ".parquet")):
        raise ValueError(f"table artifact {artifact_file!r} must end in .json or .parquet")
    c = client()
    folder, name = posixpath.split(posixpath.normpath(artifact_file))
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, name)
        if name.endswith(".json"):
            table.to_json(local, orient="split", index=False, date_format="iso")
        else:
            table.to_parquet(local, index=False)
        c.log_artifact(run_id, local, artifact_path=folder or None)
    logged = json.loads(c.get_run(run_id).data.tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
    entry = {"path": artifact_file, "type": "table"}
    if entry not in logged:
        c.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*logged, entry]))


def log_metrics(run_id: str, metrics: Mapping[str, float]) -> list[str]:
    """Log run-level values (a comparison's conclusions). A key gets a value when it has none yet, or when its
    latest value differs (then at the next step, so the history shows the change); NaN and None are skipped.
    Logging the same values again logs nothing. Returns the keys logged."""
    c = client()
    now = int(time.time() * 1000)
    new: list[Metric] = []
    for key, value in metrics.items():
        if value is None or math.isnan(float(value)):
            continue
        history = c.get_metric_history(run_id, key)
        latest = max(history, key=lambda m: (m.step, m.timestamp)) if history else None
        if latest is not None and latest.value == float(value):
            continue
        new.append(Metric(key=key, value=float(value), timestamp=now, step=latest.step + 1 if latest else 0))
    _log_metrics(c, run_id, new)
    return [m.key for m in new]


def log_figure(run_id: str, figure, artifact_file: str) -> None:
    """Log a matplotlib figure as a PNG artifact (``MlflowClient.log_figure``); a figure at the same path is
    replaced. The figure is closed afterwards."""
    import matplotlib.pyplot as plt  # late: only comparisons draw

    from prac.comparison_figures import FIGURE_DPI

    try:
        client().log_figure(run_id, figure, artifact_file, save_kwargs={"dpi": FIGURE_DPI})
    finally:
        plt.close(figure)


# MLflow 3.17's UI opens an experiment on its GenAI overview (a per-browser setting); this query parameter opens
# the "Model training" view instead: runs, charts, artifacts (DESIGN.md §3).
MACHINE_LEARNING_VIEW = "workflowType=machine_learning"
UI_URL_ENV = "MLFLOW_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:5000"  # where `mlflow ui` listens by default


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def ui_url(uri: str | None = None) -> str:
    """The MLflow UI's address: the tracking server itself, or, for a local store (SQLite, files), where the
    user serves it: ``MLFLOW_UI_URL``, else ``mlflow ui``'s default."""
    uri = uri or tracking_uri()
    return (uri if _is_server(uri) else os.environ.get(UI_URL_ENV) or DEFAULT_UI_URL).rstrip("/")


def run_link(experiment_id: str, run_id: str, artifact: str | None = None, uri: str | None = None) -> str:
    """The UI link of a run; with ``artifact``, its artifacts tab showing that file (a PNG shows as an image)."""
    page = f"#/experiments/{experiment_id}/runs/{run_id}" + (f"/artifacts/{artifact}" if artifact else "")
    return f"{ui_url(uri)}/{page}?{MACHINE_LEARNING_VIEW}"


def ui_command(uri: str | None = None) -> str | None:
    """For a local store, the command that serves its UI where ``ui_url`` points; None for a tracking server."""
    uri = uri or tracking_uri()
    if _is_server(uri):
        return None
    address = urllib.parse.urlsplit(ui_url(uri))
    port = address.port or (443 if address.scheme == "https" else 80)
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)} --host {address.hostname} --port {port}"


from tasks.tracking_runs import (comparison_run, find_comparison_run, parent_run,  # noqa: E402  (re-exports)
                                 round_child_run)

__all__ = [
    "check_tracking_reachable", "client", "comparison_run", "ensure_experiment", "experiment_name",
    "find_comparison_run", "finish_run", "log_epoch_curves", "log_figure", "log_metrics", "log_round_artifacts",
    "log_round_metrics", "log_table", "parent_run", "round_artifact_dir", "round_child_run", "run_link",
    "tracking_uri", "ui_command", "ui_url",
]
