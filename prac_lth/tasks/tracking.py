"""MLflow logging for the pipeline (docs/design.md §3): plain functions over ``MlflowClient``.

Every function builds its own ``MlflowClient(tracking_uri=tracking_uri())`` and takes explicit run
ids, so nothing relies on MLflow's global active run and several tasks or processes can log side by
side. Everything is idempotent: a resumed or re-run flow finds its experiment, parent run and round
runs again, and never logs a metric value twice at one step nor re-uploads an identical artifact.
Run lookup and creation live in ``prac_lth.tasks.tracking_runs`` (which imports this module); ``run_link`` and
``ui_command`` tell users where to see a run in the MLflow UI.

A local SQLite store is created whole or not at all (``prepare_store``): a process killed while MLflow
creates one leaves nothing behind that the next run cannot open. Against a tracking server, MLflow's
client gives up on a server that stopped answering in about 15 s instead of 4 minutes (``HTTP_DEFAULTS``),
and the run stops with one line (``TrackingUnavailable``, a ``UserError``).
"""
from __future__ import annotations

import contextlib
import functools
import glob
import json
import logging
import math
import os
import posixpath
import re
import secrets
import shlex
import sqlite3
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

from prac.errors import ArtifactError, UserError, one_line
from prac_lth.outages import is_outage

EXPERIMENT_PREFIX = "prac-lth/"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # MLflow 3's UI then opens on the runs, not GenAI
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # where mlflow.load_table looks for tables
HEALTH_TIMEOUT_S = 5.0
_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit

# MLflow's client retries a failed request to a tracking server 7 times with a backoff factor of 2 (sleeps of
# 0, 4, 8, ... 64 s, then 120 s) and waits up to 120 s for each answer: an experiment whose server went away
# would train on for about 4 minutes, blind, before it learns. These defaults give up after 4 retries, sleeping
# 0, 2, 4 and 8 s (plus up to 1 s of jitter each): a server restarted within ~15 s is ridden out, a dead one
# stops the run (one line, ``TrackingUnavailable``) ~15 s after it died; a finished round is never lost, and
# running the same command again resumes. An answer may take 30 s (uploads stream: that is per read, not per
# file). Set in the environment, they are left as they are (and reach the processes of ``compare --parallel``).
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
for _name, _value in HTTP_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
# A server that answers while its database is away (a restart, a failover) answers 503 (MLflow's store raises
# TEMPORARILY_UNAVAILABLE; its engine pre-pings, so it reconnects once the database is back). MLflow's own retries
# above last ~15 s; the call is then made again, with backoff, until the database has been away STORE_WAIT_S
# (PRAC_TRACKING_STORE_WAIT_S): about 75 s in all, as long as Prefect's client rides out (prac_lth/outages.py).
STORE_WAIT_ENV, STORE_WAIT_S = "PRAC_TRACKING_STORE_WAIT_S", 60.0
_STORE_AWAY = re.compile(r"too many 503 error responses")


class TrackingUnavailable(UserError):
    """The tracking server stopped answering in the middle of an experiment."""


class TrackingStoreAway(TrackingUnavailable):
    """The tracking server answers, but its database is away."""


class _UserErrorWithoutTraceback(logging.Filter):
    """Prefect logs a task's or flow's exception with its traceback; for a ``UserError`` (a tracking server
    that went away mid-flow, an artifact found corrupt) the message says it all, and the CLI ends with it as
    one line, so the traceback is left out (the log line, with the error's text, stays). So for a Prefect server
    that stopped answering (prac_lth/outages.py): the flow then fails, or the CLI ends, with that one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and (isinstance(record.exc_info[1], UserError) or is_outage(record.exc_info[1])):
            record.exc_info, record.exc_text = None, None
        return True


for _logger in ("prefect.task_runs", "prefect.flow_runs"):  # every process running the flow imports this module
    if not any(isinstance(f, _UserErrorWithoutTraceback) for f in logging.getLogger(_logger).filters):
        logging.getLogger(_logger).addFilter(_UserErrorWithoutTraceback())


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else MLflow's own default.

    MLflow 3 resolves its default to an absolute ``sqlite:///<cwd>/mlflow.db`` (or to ``./mlruns``
    as a file store when that folder already holds old file-store experiments).
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or mlflow.get_tracking_uri()


class _ServerClient(MlflowClient):
    """An ``MlflowClient`` of a tracking server whose failing calls raise ``TrackingUnavailable`` when the
    server no longer answers its health check (any other failure is raised as it was)."""

    def __init__(self, uri: str):
        self._prac_uri = uri
        super().__init__(tracking_uri=uri)

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        uri = super().__getattribute__("_prac_uri")

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return _through_store_outages(uri, lambda: attribute(*args, **kwargs))

        return call


def store_wait_s() -> float:
    return float(os.environ.get(STORE_WAIT_ENV, STORE_WAIT_S))


def _store_away(exc: BaseException) -> bool:
    """Whether a failed call is the server answering that its database is away: 503 through MLflow's retries
    (TEMPORARILY_UNAVAILABLE when they are off)."""
    return getattr(exc, "error_code", None) == "TEMPORARILY_UNAVAILABLE" or bool(_STORE_AWAY.search(str(exc)))


def _store_away_line(uri: str, exc: BaseException, waited: str) -> str:
    return (f"MLflow tracking server {uri} answers, but its database {waited} ({one_line(exc, 160)}): the experiment "
            "stopped; run the same command again once the database is back, finished stages are kept")


def _through_store_outages(uri: str, call: Any) -> Any:
    """`call()` to the server at `uri`, made again with backoff while the server answers that its database is
    away, for up to store_wait_s(); then ``TrackingStoreAway`` (one line)."""
    first, pause = None, 1.0
    while True:
        try:
            with server_calls(uri):
                return call()
        except TrackingStoreAway as away:
            first = first or time.monotonic()
            left = store_wait_s() - (time.monotonic() - first)
            if left <= 0:
                raise TrackingStoreAway(_store_away_line(
                    uri, away.__cause__, f"has been away for {store_wait_s():.0f} s ({STORE_WAIT_ENV})")) from away
            time.sleep(min(pause, left))
            pause = min(2 * pause, 10.0)


@contextlib.contextmanager
def server_calls(uri: str | None = None) -> Iterator[None]:
    """Around calls to the tracking server at ``uri`` (default: ``tracking_uri()``): ``client()``'s, and MLflow's
    own that go without it (``mlflow.pytorch.log_model``). A failure while the server does not answer its health
    check is ``TrackingUnavailable`` (one line), and so is one while the server answers that its database is away
    (``TrackingStoreAway``: client() makes its calls again meanwhile); any other is raised as it was."""
    uri = uri or tracking_uri()
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        if is_server(uri):
            _raise_if_server_gone(uri, exc)
            if _store_away(exc):
                raise TrackingStoreAway(_store_away_line(uri, exc, "is away")) from exc
        raise


def client() -> MlflowClient:
    uri = tracking_uri()
    if not is_server(uri):
        return MlflowClient(tracking_uri=uri)
    return _ServerClient(uri)


def _health_problem(uri: str) -> str | None:
    """Why the tracking server at ``uri`` does not answer its health check, or None when it does."""
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S) as response:
            return None if response.status == 200 else f"HTTP {response.status} from /health"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from /health"
    except urllib.error.URLError as exc:
        return one_line(exc.reason if isinstance(exc.reason, BaseException) else exc, 300)
    except (OSError, ValueError) as exc:
        return one_line(exc, 300)


def _raise_if_server_gone(uri: str, exc: BaseException) -> None:
    if problem := _health_problem(uri):
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} stopped answering ({problem}; {one_line(exc, 200)}): the experiment "
            "stopped; run the same command again once the server is back, finished stages are kept") from exc


def check_tracking_reachable(uri: str | None = None) -> None:
    """Fail fast, with a one-line ``UserError``, when the tracking store cannot be used.

    A local SQLite store that does not exist yet is created here, whole (``prepare_store``)."""
    uri = uri or tracking_uri()
    if is_server(uri):
        if problem := _health_problem(uri):
            raise UserError(f"MLflow tracking server {uri} is unreachable ({problem})")
        return
    try:  # sqlite, postgresql, file stores...: opening the store creates the schema (SQLite: prepare_store did)
        prepare_store(uri)
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot use this store"
        raise UserError(f"MLflow tracking store {uri} cannot be opened ({one_line(exc, 300)})") from None


# --------------------------------------------------------------------------------------------------
# A local SQLite store: created whole or not at all, never migrated

_CREATING = ".creating-"  # the temporary name of a store being created: .<name>.creating-<pid>-<random>


def _sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store (None for other stores, in-memory ones and SQLite URI filenames)."""
    if not uri.startswith("sqlite:"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(uri).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).absolute()


def prepare_store(uri: str | None = None) -> None:
    """Make sure the SQLite store of ``uri`` is complete before MLflow opens it; other stores are left alone.

    MLflow creates a SQLite store in place: the file, its first tables, then some hundred schema migrations,
    not in one transaction. A process killed meanwhile leaves a store that neither opens nor migrates again
    ("table ... already exists") until someone deletes it. So a store that does not exist (or an empty file,
    which holds nothing) is created here under a temporary name in the same folder (``MlflowClient`` runs the
    migrations), and linked into place once complete, never over a store another process made meanwhile;
    creators take turns (``flock`` on the folder), and a temporary store a killed creator left is removed.

    An existing store is never migrated: one that lacks tables of this MLflow's schema (MLflow would migrate
    it) or is at another schema revision is refused in one line saying what to do (``mlflow db upgrade``)."""
    uri = uri or tracking_uri()
    path = _sqlite_path(uri)
    if path is None:
        return
    if not path.exists() or path.stat().st_size == 0:
        _create_store(uri, path)
    elif _leftovers(path):
        with _folder_lock(path.parent):
            _remove_leftovers(path)
    _check_store_schema(uri, path)


def _leftovers(path: Path) -> list[Path]:
    return [Path(p) for p in glob.glob(str(path.parent / f".{glob.escape(path.name)}{_CREATING}*"))]


def _remove_leftovers(path: Path) -> None:
    """Temporary stores of creators that were killed (call with the folder's lock held: no creator is alive)."""
    for leftover in _leftovers(path):
        leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder itself (no lock file to leave behind; a killed holder's lock goes
    with it). Where there is no ``fcntl``, creators do not take turns; linking still never clobbers a store."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _create_store(uri: str, path: Path) -> None:
    from sqlalchemy.engine import make_url

    path.parent.mkdir(parents=True, exist_ok=True)
    with _folder_lock(path.parent):
        _remove_leftovers(path)
        if path.exists() and path.stat().st_size > 0:
            return  # another process created it while this one waited for the lock
        for suffix in ("-journal", "-wal", "-shm"):  # of no store (SQLite would play a hot journal into ours)
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        temporary = path.with_name(f".{path.name}{_CREATING}{os.getpid()}-{secrets.token_hex(4)}")
        temporary_uri = make_url(uri).set(database=str(temporary)).render_as_string(hide_password=False)
        try:
            quiet = logging.getLogger("mlflow.store.db.utils")  # "Creating initial MLflow database tables..."
            level = quiet.level
            quiet.setLevel(logging.WARNING)
            try:
                MlflowClient(tracking_uri=temporary_uri).search_experiments(max_results=1)  # creates, migrates
            finally:
                quiet.setLevel(level)
            _close_store(temporary_uri)
            _check_store_schema(uri, temporary)
            try:
                os.link(temporary, path)  # fails where a store exists: never clobbers one
            except FileExistsError:
                if path.stat().st_size == 0:
                    os.replace(temporary, path)  # an empty file holds nothing
            except OSError:  # a file system without hard links; the lock keeps other creators out
                if not path.exists() or path.stat().st_size == 0:
                    os.replace(temporary, path)
            _sync_folder(path.parent)
        finally:
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{temporary}{suffix}").unlink(missing_ok=True)


def _close_store(uri: str) -> None:
    """Close the connections MLflow keeps open to the temporary store (it caches one engine per URI)."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engine = getattr(SqlAlchemyStore, "_engine_map", {}).pop(uri, None)
    if engine is not None:
        engine.dispose()


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system syncs a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_store_schema(uri: str, path: Path) -> None:
    """Refuse, in one line, a store MLflow would migrate (tables missing) or refuse (another revision)."""
    import mlflow.store.db.utils as db_utils  # also registers every table with Base.metadata
    from mlflow.store.db.base_sql_model import Base

    # mode=rw: never creates the file, and only reads here; but read-only (mode=ro) could not roll back the hot
    # journal a process killed mid-write leaves ("attempt to write a readonly database"), as any open must.
    connection = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = sorted(set(Base.metadata.tables) - tables)
        revision = (connection.execute("SELECT version_num FROM alembic_version").fetchone()
                    if "alembic_version" in tables else None)
        revision = revision[0] if revision else None
        head = db_utils._get_latest_schema_revision()
        if not missing and revision == head:
            return
        runs = connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] if "runs" in tables else 0
    finally:
        connection.close()
    what = (f"lacks {len(missing)} of the {len(Base.metadata.tables)} tables of MLflow {mlflow.__version__} "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})" if missing else
            f"is at schema revision {revision}, MLflow {mlflow.__version__} expects {head}")
    if not runs:
        advice = f"it holds no runs (was its creation interrupted?): delete {path} and run again"
    else:
        advice = f"back it up and run `mlflow db upgrade {uri}` (prac-lth never upgrades a store)"
    raise UserError(f"MLflow tracking store {uri} {what}: {advice}")


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
    """End a run (``FINISHED``, ``FAILED`` or ``KILLED``).

    A run that failed because its tracking server went away cannot be marked: rather than retrying for
    nothing, ``TrackingUnavailable`` says so at once (the run stays RUNNING; the same command reopens it)."""
    uri = tracking_uri()
    if status != "FINISHED" and is_server(uri) and (problem := _health_problem(uri)):
        raise TrackingUnavailable(f"MLflow tracking server {uri} stopped answering ({problem}): the experiment "
                                  "stopped; run the same command again once the server is back, finished stages "
                                  "are kept")
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


def log_model_metrics(run_id: str, model_id: str, step: int, metrics: Mapping[str, float]) -> None:
    """Attach ``metrics`` at ``step`` to the LoggedModel ``model_id`` of run ``run_id`` (NaN and None skipped).

    MLflow logs a model's metric on its run too. A key the run already has a value of at ``step`` is logged as that
    very value (its value and timestamp: the run's store keeps one row of a key, step, value and timestamp), so the
    run's history gains no second value there (MLflow's own ``log_model``, given a run, attaches the run's metrics so);
    a key it lacks gets ``metrics``' value, which the run then has too."""
    c = client()
    now = int(time.time() * 1000)
    rows: list[Metric] = []
    for key, value in metrics.items():
        if value is None or math.isnan(float(value)):
            continue
        logged = min((m for m in c.get_metric_history(run_id, key) if m.step == step), key=lambda m: m.timestamp,
                     default=None)
        value, timestamp = (logged.value, logged.timestamp) if logged else (float(value), now)
        rows.append(Metric(key=key, value=value, timestamp=timestamp, step=int(step), model_id=model_id))
    _log_metrics(c, run_id, rows)


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

    from prac.reporting.comparison_figures import FIGURE_DPI

    try:
        client().log_figure(run_id, figure, artifact_file, save_kwargs={"dpi": FIGURE_DPI})
    finally:
        plt.close(figure)


# MLflow 3.17's UI opens an experiment on its GenAI overview (a per-browser setting); this query parameter opens
# the "Model training" view instead: runs, charts, artifacts (docs/design.md §3).
MACHINE_LEARNING_VIEW = "workflowType=machine_learning"
UI_URL_ENV = "MLFLOW_UI_URL"
DEFAULT_UI_URL = "http://127.0.0.1:5000"  # where `mlflow ui` listens by default


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def ui_url(uri: str | None = None) -> str:
    """The MLflow UI's address: the tracking server itself, or, for a local store (SQLite, files), where the
    user serves it: ``MLFLOW_UI_URL``, else ``mlflow ui``'s default."""
    uri = uri or tracking_uri()
    return (uri if is_server(uri) else os.environ.get(UI_URL_ENV) or DEFAULT_UI_URL).rstrip("/")


def run_link(experiment_id: str, run_id: str, artifact: str | None = None, uri: str | None = None) -> str:
    """The UI link of a run; with ``artifact``, its artifacts tab showing that file (a PNG shows as an image)."""
    page = f"#/experiments/{experiment_id}/runs/{run_id}" + (f"/artifacts/{artifact}" if artifact else "")
    return f"{ui_url(uri)}/{page}?{MACHINE_LEARNING_VIEW}"


def ui_command(uri: str | None = None) -> str | None:
    """For a local store, the command that serves its UI where ``ui_url`` points; None for a tracking server."""
    uri = uri or tracking_uri()
    if is_server(uri):
        return None
    address = urllib.parse.urlsplit(ui_url(uri))
    port = address.port or (443 if address.scheme == "https" else 80)
    return f"mlflow ui --backend-store-uri {shlex.quote(uri)} --host {address.hostname} --port {port}"


__all__ = [
    "check_tracking_reachable", "client", "ensure_experiment", "experiment_name", "finish_run", "log_epoch_curves",
    "log_figure", "log_metrics", "log_model_metrics", "log_round_artifacts", "log_round_metrics", "log_table",
    "round_artifact_dir", "run_link", "tracking_uri", "ui_command", "ui_url",
]
