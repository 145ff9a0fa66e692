"""An experiment's ticket retrains as flow runs on its pool (prac_lth/flows/pool_retrains.py), against a real Prefect
server with a work pool and the retrain deployment but no worker: a retrain no worker takes is cancelled and done
by the experiment itself once it needs the ticket; a retrain started twice is one flow run. (Workers taking them,
on the loopback stack: tests/test_scale_out.py.)"""
from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.testing.utilities import prefect_test_harness

from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac_lth.flows import pool_retrains
from prac_lth.flows.retrain_flow import prac_lth_retrain

POOL = "gpu-test"
MASK = {"path": "/nowhere/round_00/mask.parquet", "sha256": "0" * 64}  # never read: no worker runs the flow


@pytest.fixture(scope="module")
def pool():
    with prefect_test_harness(server_startup_timeout=120):
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        prac_lth_retrain.to_deployment(name="digits", work_pool_name=POOL).apply()
        yield


def _config(tmp_path, seed: int):
    return apply_overrides(preset_config("digits-smoke"), [
        f"seed={seed}", "runtime.retrain_alongside=true", f"runtime.output_dir={tmp_path}"])


def _state(run_id):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


def test_the_retrain_deployment_is_found_on_its_pool_only(pool, tmp_path):
    config = _config(tmp_path, 0)
    assert pool_retrains.retrain_deployment(config, POOL) == "prac-lth-retrain/digits"
    assert pool_retrains.retrain_deployment(config, "another-pool") is None
    cifar = config.model_copy(update={"data": config.data.model_copy(update={"dataset": "cifar10"})})
    assert pool_retrains.retrain_deployment(cifar, POOL) is None  # not registered here


def test_a_retrain_no_worker_takes_is_cancelled_and_done_by_the_experiment(pool, tmp_path, monkeypatch):
    monkeypatch.setattr(pool_retrains, "WAIT_S", 1.0)
    monkeypatch.setattr(pool_retrains, "POLL_S", 0.2)
    here = {"path": str(tmp_path / "round_00" / "ticket.json"), "sha256": "1" * 64}
    calls = []

    def retrain_here():
        calls.append(1)
        return here

    config = _config(tmp_path, 1)
    first = pool_retrains.PoolRetrain(config, "prac-lth-retrain/digits", 0, MASK, retrain_here)
    again = pool_retrains.PoolRetrain(config, "prac-lth-retrain/digits", 0, MASK, retrain_here)
    assert again.run_id == first.run_id  # its idempotency key: one flow run
    assert not first.done() and _state(first.run_id).is_scheduled()

    assert first.result() == here and calls == [1]
    state = _state(first.run_id)
    assert state.is_cancelled() and "no worker took it" in state.message
    assert first.done()
    assert again.result() == here and calls == [1, 1]  # cancelled: its experiment retrains (Cached in a real run)
    # Started again (a resumed experiment), a cancelled retrain gets a new flow run
    assert pool_retrains.PoolRetrain(config, "prac-lth-retrain/digits", 0, MASK, retrain_here).run_id != first.run_id
