"""prac_lth.tasks.tracking against a temporary sqlite store (one store shared by the module: opening a fresh
one runs MLflow's migrations, a few seconds)."""
from __future__ import annotations

import contextlib
import math
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from prac.errors import ArtifactError, UserError
from prac_lth.tasks import tracking, tracking_runs
from tests.mlflow_store import temporary_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with temporary_store(tmp_path_factory) as store:
        yield store


@pytest.fixture(scope="module")
def experiment_id(store):
    root, _, _ = store
    return tracking.ensure_experiment("test-preset", artifact_location=(root / "artifacts").as_uri())


@pytest.fixture(scope="module")
def parent(experiment_id):
    return tracking_runs.parent_run(experiment_id, "fp-parent", "prac", 0,
                               {"train.lr": 0.1, "train.epochs": 3, "prune.global": True, "data.root": None},
                               run_name="prac-seed0")


def test_tracking_uri_env_and_default(store, tmp_path, monkeypatch):
    _, uri, _ = store
    assert tracking.tracking_uri() == uri
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"  # MLflow 3's own default


def test_store_reachable(store):
    _, uri, _ = store
    tracking.check_tracking_reachable(uri)
    tracking.check_tracking_reachable()


def test_unreachable_server_fails_fast_in_one_line():
    start = time.monotonic()
    with pytest.raises(UserError) as info:
        tracking.check_tracking_reachable("http://127.0.0.1:9")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert message.startswith("MLflow tracking server http://127.0.0.1:9 is unreachable (")
    assert "\n" not in message


def test_unopenable_store(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")  # MLflow creates missing folders, not this
    with pytest.raises(UserError) as info:
        tracking.check_tracking_reachable(f"sqlite:///{tmp_path}/a-file/mlflow.db")
    assert "\n" not in str(info.value)


def test_experiment_created_once_with_kind_tag(store, experiment_id):
    _, _, c = store
    experiment = c.get_experiment(experiment_id)
    assert experiment.name == "prac-lth/test-preset"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert tracking.ensure_experiment("test-preset") == experiment_id


def test_parent_run_found_again_by_fingerprint(store, experiment_id, parent):
    _, _, c = store
    tracking.finish_run(parent)
    assert c.get_run(parent).info.status == "FINISHED"
    again = tracking_runs.parent_run(experiment_id, "fp-parent", "prac", 0, {"train.lr": 0.1, "train.extra": "x"})
    assert again == parent
    runs = c.search_runs([experiment_id], "tags.`prac.fingerprint` = 'fp-parent' and tags.`prac.kind` = 'experiment'")
    assert len(runs) == 1
    run = c.get_run(parent)
    assert run.info.status == "RUNNING"
    assert run.info.run_name == "prac-seed0"
    assert {k: run.data.tags[k] for k in ("prac.method", "prac.seed", "prac.fingerprint", "prac.kind")} == {
        "prac.method": "prac", "prac.seed": "0", "prac.fingerprint": "fp-parent", "prac.kind": "experiment"}
    assert run.data.params == {"train.lr": "0.1", "train.epochs": "3", "prune.global": "True",
                               "data.root": "None", "train.extra": "x"}
    other = tracking_runs.parent_run(experiment_id, "fp-other", "lt", 1, {})
    assert other != parent


def test_round_metrics_once_per_step(store, parent):
    _, _, c = store
    assert tracking.log_round_metrics(parent, 0, {"sparsity": 0.0, "test_acc": 0.91, "cet_size": float("nan")})
    assert not tracking.log_round_metrics(parent, 0, {"sparsity": 0.0, "test_acc": 0.5})
    assert tracking.log_round_metrics(parent, 0, {"ticket_test_acc": 0.9, "test_acc": 0.5})  # only the new key
    assert tracking.log_round_metrics(parent, 1, {"sparsity": 0.2, "test_acc": 0.92})
    assert tracking.log_round_metrics(parent, 1, {"sparsity": 0.2, "test_acc": 0.92, "cet_size": 17}) is True
    history = {m.step: m.value for m in c.get_metric_history(parent, "test_acc")}
    assert len(c.get_metric_history(parent, "test_acc")) == 2
    assert history == {0: 0.91, 1: 0.92}
    assert [(m.step, m.value) for m in c.get_metric_history(parent, "cet_size")] == [(1, 17.0)]  # NaN skipped
    assert [m.step for m in c.get_metric_history(parent, "ticket_test_acc")] == [0]


def test_round_child_runs_nested_and_idempotent(store, experiment_id, parent):
    _, _, c = store
    child0 = tracking_runs.round_child_run(experiment_id, parent, 0)
    child1 = tracking_runs.round_child_run(experiment_id, parent, 1)
    assert child0 != child1
    assert tracking_runs.round_child_run(experiment_id, parent, 0) == child0
    run = c.get_run(child0)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.tags["prac.kind"] == "round" and run.data.tags["prac.round"] == "0"
    assert run.info.run_name == "round_00"
    # a round run never passes for the parent, though it carries the parent's fingerprint
    assert tracking_runs.parent_run(experiment_id, "fp-parent", "prac", 0, {}) == parent

    curves = [{"train_loss": 1.0, "val_acc": 0.5, "lr": 0.1},
              {"train_loss": 0.5, "val_acc": float("nan"), "lr": 0.1}]
    assert tracking.log_epoch_curves(child0, curves)
    assert not tracking.log_epoch_curves(child0, curves)
    assert tracking.log_epoch_curves(child0, [*curves, {"train_loss": 0.25, "val_acc": 0.7, "lr": 0.01}])
    assert [(m.step, m.value) for m in c.get_metric_history(child0, "train_loss")] == [(0, 1.0), (1, 0.5), (2, 0.25)]
    assert sorted(m.step for m in c.get_metric_history(child0, "val_acc")) == [0, 2]
    tracking.finish_run(child0)
    assert c.get_run(child0).info.status == "FINISHED"


def test_round_artifacts(store, parent, tmp_path):
    _, _, c = store
    mask = tmp_path / "mask.parquet"
    prac_set = tmp_path / "prac_set.parquet"
    mask.write_bytes(b"mask bytes \x00\x01")
    prac_set.write_bytes(b"prac set bytes")
    assert tracking.log_round_artifacts(parent, 3, [mask, prac_set]) == ["round_03/mask.parquet", "round_03/prac_set.parquet"]
    assert tracking.log_round_artifacts(parent, 3, [mask, prac_set]) == []
    assert sorted(f.path for f in c.list_artifacts(parent, "round_03")) == ["round_03/mask.parquet", "round_03/prac_set.parquet"]
    local = Path(c.download_artifacts(parent, "round_03/mask.parquet", str(tmp_path / "down")))
    assert local.read_bytes() == mask.read_bytes()
    with pytest.raises(ArtifactError):
        tracking.log_round_artifacts(parent, 3, [tmp_path / "absent.parquet"])


def test_comparison_run_and_table(store, experiment_id):
    _, _, c = store
    params = {"seeds": "0,1,2", "preset": "test-preset"}
    run_id = tracking_runs.comparison_run(experiment_id, "compare-0,1,2", params)
    assert tracking_runs.comparison_run(experiment_id, "compare-0,1,2", params) == run_id
    assert tracking_runs.comparison_run(experiment_id, "compare-0,1", {"seeds": "0,1"}) != run_id
    run = c.get_run(run_id)
    assert run.data.tags["prac.kind"] == "comparison"
    assert run.data.params == params
    # the comparison run does not pass for a parent run
    assert tracking_runs.parent_run(experiment_id, "fp-parent", "prac", 0, {}) != run_id

    table = pd.DataFrame({"method": ["prac", "lt"], "sparsity": [0.8, 0.8], "iterations": [1200, 3000]})
    tracking.log_table(run_id, table, "comparison.json")
    tracking.log_table(run_id, table, "comparison.json")  # replaced, not appended
    # mlflow.load_table looks in the active experiment ("0" here); the client takes the experiment
    loaded = c.load_table(experiment_id, "comparison.json", run_ids=[run_id])
    pd.testing.assert_frame_equal(loaded, table)
    assert tracking.log_round_metrics(run_id, 0, {"iteration_saving": 0.6, "matched_sparsity": math.nan})
    tracking.finish_run(run_id)


# --------------------------------------------------------------------------------------------------
# A local SQLite store is created whole or not at all (tracking.prepare_store)

_CREATOR = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

uri, how, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
count = 0


@event.listens_for(Engine, "before_cursor_execute")
def _statement(*args):  # SIGKILL: no cleanup at all, like a lost machine
    global count
    count += 1
    if count == limit:
        os.kill(os.getpid(), signal.SIGKILL)


if how == "after-link":  # killed between linking the store into place and removing its temporary name
    link = os.link

    def _link(*args, **kwargs):
        link(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    os.link = _link
if how == "mlflow":  # what the flow did before: MLflow creating the store in place
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
else:
    from prac_lth.tasks.tracking import prepare_store

    prepare_store(uri)
print(count)
"""
_REPO = Path(__file__).resolve().parents[1]


def _start_creator(script: Path, db: Path, how: str = "prepare", limit: int = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), f"sqlite:///{db}", how, str(limit)], cwd=_REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def _schema(db: Path) -> tuple[set[str], str | None]:
    with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return tables, revision


def test_store_creation_killed_anywhere_leaves_no_store_or_a_complete_one(tmp_path):
    """A creator SIGKILLed at seeded random SQL statements of the creation (mid-migration included), and just
    after linking the store into place: the store's path holds nothing or a complete store, never a part; the
    next prepare_store creates it (or keeps it) and removes what the killed one left."""
    script = tmp_path / "creator.py"
    script.write_text(_CREATOR)
    reference_db = tmp_path / "reference" / "m.db"
    statements = []

    def count(*args):
        statements.append(1)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        tracking.prepare_store(f"sqlite:///{reference_db}")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    statements = len(statements)
    assert statements > 100, statements  # tables, then the migrations
    reference = _schema(reference_db)
    assert [p.name for p in reference_db.parent.iterdir()] == ["m.db"]

    limits = sorted(int(n) for n in np.random.default_rng(0).integers(1, statements, size=3))
    trials = [(f"kill-{n}", "prepare", n) for n in limits] + [("after-link", "after-link", 0)]
    procs = {}
    for name, how, limit in trials:  # side by side: independent folders
        db = tmp_path / name / "m.db"
        procs[name] = (db, _start_creator(script, db, how, limit))
    for name, (db, proc) in procs.items():
        rc, _, err = _finished(proc)
        assert rc == -signal.SIGKILL, (name, rc, err[-3000:])
        if name == "after-link":
            assert _schema(db) == reference, "the store linked into place must be complete"
        else:
            assert not db.exists(), f"{name}: a store appeared before its creation finished"
        assert [p for p in db.parent.iterdir() if p.name != "m.db"], f"{name}: nothing left to clean up?"
        tracking.prepare_store(f"sqlite:///{db}")  # the next run
        assert _schema(db) == reference, name
        assert [p.name for p in db.parent.iterdir()] == ["m.db"], f"{name}: leftovers {list(db.parent.iterdir())}"
        tracking.check_tracking_reachable(f"sqlite:///{db}")


_KILLED_WRITER = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA cache_size=1")  # pages spill into the file before the commit that never comes
connection.execute("BEGIN IMMEDIATE")
for i in range(3000):
    connection.execute("INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, 0)", (f"k{i}", "v" * 200))
os._exit(9)  # killed mid-write: the rollback journal stays behind, hot
"""


def test_a_store_whose_writer_was_killed_mid_write_opens_as_it_was_before_that_write(tmp_path):
    """A run killed while MLflow wrote to its SQLite store leaves a hot rollback journal: the re-run opens the
    store (SQLite rolls the unfinished write back), instead of failing on a read-only look at the schema."""
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    tracking.check_tracking_reachable(uri)
    with contextlib.closing(sqlite3.connect(db)) as connection:
        tags_before = connection.execute("SELECT COUNT(*) FROM experiment_tags").fetchone()[0]
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(db)], check=False, timeout=120)
    journal = Path(f"{db}-journal")
    assert journal.is_file() and journal.stat().st_size > 0  # the state a killed writer leaves
    tracking.check_tracking_reachable(uri)
    with contextlib.closing(sqlite3.connect(db)) as connection:
        assert connection.execute("SELECT COUNT(*) FROM experiment_tags").fetchone()[0] == tags_before


def test_store_is_never_migrated_in_place(tmp_path):
    """A store MLflow left half-created (killed while creating it in place), or one at another schema revision:
    refused in one line saying what to do, the file left byte for byte as it was."""
    script = tmp_path / "creator.py"
    script.write_text(_CREATOR)
    half = tmp_path / "half" / "m.db"
    rc, _, err = _finished(_start_creator(script, half, "mlflow", 1000))  # mid-migration
    assert rc == -signal.SIGKILL, (rc, err[-3000:])
    before = half.read_bytes()
    with pytest.raises(UserError) as info:
        tracking.check_tracking_reachable(f"sqlite:///{half}")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"MLflow tracking store sqlite:///{half} ")
    assert f"holds no runs (was its creation interrupted?): delete {half}" in message, message
    assert half.read_bytes() == before

    old = tmp_path / "old" / "m.db"
    uri = f"sqlite:///{old}"
    tracking.prepare_store(uri)
    with temporary_store_at(uri):
        experiment = tracking.ensure_experiment("old")
        tracking_runs.parent_run(experiment, "fp-old", "prac", 0, {})
    with contextlib.closing(sqlite3.connect(old)) as connection, connection:
        connection.execute("UPDATE alembic_version SET version_num = '0584bdc529eb'")
    before = old.read_bytes()
    with pytest.raises(UserError) as info:
        tracking.check_tracking_reachable(uri)
    message = str(info.value)
    assert "is at schema revision 0584bdc529eb" in message and f"run `mlflow db upgrade {uri}`" in message, message
    assert old.read_bytes() == before


@contextlib.contextmanager
def temporary_store_at(uri: str):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        yield


# --------------------------------------------------------------------------------------------------
# A tracking server that stops answering

def test_http_retry_defaults_are_set_unless_given():
    import os

    for name, value in tracking.HTTP_DEFAULTS.items():
        assert os.environ[name] == value  # nothing in the test environment sets them
    assert int(tracking.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) <= 5


def test_a_server_that_stopped_answering_is_one_line_and_other_failures_stay_as_they_were(monkeypatch):
    uri = "http://127.0.0.1:9"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    start = time.monotonic()
    with pytest.raises(tracking.TrackingUnavailable) as info:
        tracking.client().get_run("0" * 32)
    message = str(info.value)
    assert isinstance(info.value, UserError) and "\n" not in message
    assert message.startswith(f"MLflow tracking server {uri} stopped answering (")
    with pytest.raises(tracking.TrackingUnavailable):  # at once: nothing to retry against a dead server
        tracking.finish_run("0" * 32, "FAILED")
    assert time.monotonic() - start < 30
    # the server answering its health check: the call's own error, unchanged
    monkeypatch.setattr(tracking, "_health_problem", lambda uri: None)
    with pytest.raises(Exception) as info:
        tracking.client().get_run("0" * 32)
    assert not isinstance(info.value, UserError), info.value


def test_mlflows_own_calls_to_a_server_that_stopped_answering_are_one_line_too(monkeypatch, tmp_path):
    """mlflow.pytorch.log_model talks to the server without our client (prac_lth/tasks/ticket_logging.py): the
    ticket's upload cut by a dead server ends as TrackingUnavailable, not MLflow's traceback."""
    import mlflow

    uri = "http://127.0.0.1:9"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(tracking.TrackingUnavailable) as info:
        with tracking.server_calls():
            mlflow.MlflowClient(uri).get_run("0" * 32)  # MLflow's own client, not tracking.client()
    assert str(info.value).startswith(f"MLflow tracking server {uri} stopped answering (")
    with pytest.raises(ValueError, match="not the server's"):  # a failure of ours while it answers: unchanged
        with tracking.server_calls():
            monkeypatch.setattr(tracking, "_health_problem", lambda uri: None)
            raise ValueError("not the server's")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")  # a local store: as it was
    with pytest.raises(KeyError):
        with tracking.server_calls():
            raise KeyError("local")
