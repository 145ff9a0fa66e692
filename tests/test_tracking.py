"""tasks.tracking against a temporary sqlite store (one store shared by the module: opening a fresh
one runs MLflow's migrations, a few seconds)."""
from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
import pytest

from prac.errors import ArtifactError, UserError
from tasks import tracking
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
    return tracking.parent_run(experiment_id, "fp-parent", "prac", 0,
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
    again = tracking.parent_run(experiment_id, "fp-parent", "prac", 0, {"train.lr": 0.1, "train.extra": "x"})
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
    other = tracking.parent_run(experiment_id, "fp-other", "lt", 1, {})
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
    child0 = tracking.round_child_run(experiment_id, parent, 0)
    child1 = tracking.round_child_run(experiment_id, parent, 1)
    assert child0 != child1
    assert tracking.round_child_run(experiment_id, parent, 0) == child0
    run = c.get_run(child0)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.tags["prac.kind"] == "round" and run.data.tags["prac.round"] == "0"
    assert run.info.run_name == "round_00"
    # a round run never passes for the parent, though it carries the parent's fingerprint
    assert tracking.parent_run(experiment_id, "fp-parent", "prac", 0, {}) == parent

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
    run_id = tracking.comparison_run(experiment_id, "compare-0,1,2", params)
    assert tracking.comparison_run(experiment_id, "compare-0,1,2", params) == run_id
    assert tracking.comparison_run(experiment_id, "compare-0,1", {"seeds": "0,1"}) != run_id
    run = c.get_run(run_id)
    assert run.data.tags["prac.kind"] == "comparison"
    assert run.data.params == params
    # the comparison run does not pass for a parent run
    assert tracking.parent_run(experiment_id, "fp-parent", "prac", 0, {}) != run_id

    table = pd.DataFrame({"method": ["prac", "lt"], "sparsity": [0.8, 0.8], "iterations": [1200, 3000]})
    tracking.log_table(run_id, table, "comparison.json")
    tracking.log_table(run_id, table, "comparison.json")  # replaced, not appended
    # mlflow.load_table looks in the active experiment ("0" here); the client takes the experiment
    loaded = c.load_table(experiment_id, "comparison.json", run_ids=[run_id])
    pd.testing.assert_frame_equal(loaded, table)
    assert tracking.log_round_metrics(run_id, 0, {"iteration_saving": 0.6, "matched_sparsity": math.nan})
    tracking.finish_run(run_id)
