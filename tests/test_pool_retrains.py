"""A work pool with no worker, on a real Prefect server with the experiment and retrain deployments on it:
- an experiment's ticket retrains as flow runs on its pool (prac_lth/flows/pool_retrains.py): a retrain no worker
  takes is cancelled and done by the experiment itself once it needs the ticket; one started twice is one flow run;
- a comparison on that pool (prac_lth/flows/fleet.py) is refused before anything starts, from the CLI too; one
  whose flow runs no worker takes ends naming the pool.
(Workers taking them, on the loopback stack: tests/test_scale_out.py.)"""
from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from tests.prefect_homes import prefect_harness

from prac.errors import UserError
from prac.settings.overrides import apply_overrides
from prac.settings.presets import preset_config
from prac_lth.cli import main
from prac_lth.flows import fleet, pool_retrains
from prac_lth.flows.experiment_flow import prac_lth
from prac_lth.flows.retrain_flow import prac_lth_retrain

POOL = "gpu-test"
MASK = {"path": "/nowhere/round_00/mask.parquet", "sha256": "0" * 64}  # never read: no worker runs the flow


@pytest.fixture(scope="module")
def pool():
    with prefect_harness():
        with get_client(sync_client=True) as client:
            client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
        prac_lth_retrain.to_deployment(name="digits", work_pool_name=POOL).apply()
        prac_lth.to_deployment(name="digits", work_pool_name=POOL).apply()
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


def test_a_comparison_on_a_pool_with_no_worker_online_is_refused_before_it_starts(pool, tmp_path, capsys):
    config = _config(tmp_path, 2)
    with pytest.raises(UserError, match=f"no work pool 'gpu-typo' on the Prefect server at http://.* \\(deployment "
                                        f"prac-lth/digits runs on work pool '{POOL}'\\)"):
        fleet.check_pool(config, "gpu-typo")
    with pytest.raises(UserError, match=f"work pool '{POOL}' has no worker online .*prefect worker start --pool "
                                        f"{POOL}\\): nothing was started"):
        fleet.check_pool(config, POOL)
    # The CLI says so in one line, exit 2, before any flow run is created
    assert main(["compare", "digits-smoke", "--pool", POOL, "--output-dir", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("prac-lth: error: work pool") and "has no worker online" in line
    with get_client(sync_client=True) as client:
        assert not [run for run in client.read_flow_runs() if run.name.startswith("compare")]
        # A worker online (its heartbeat, as `prefect worker start` sends it): accepted
        client.send_worker_heartbeat(work_pool_name=POOL, worker_name="busy-worker", heartbeat_interval_seconds=60)
    assert fleet.check_pool(config, POOL) == fleet.OnPool(POOL, "prac-lth/digits")


def test_a_comparison_whose_flow_runs_no_worker_takes_ends_naming_the_pool(pool, tmp_path, monkeypatch):
    monkeypatch.setenv("PRAC_PICKUP_WAIT_S", "1")
    monkeypatch.setattr(fleet, "POLL_S", 0.2)
    config = _config(tmp_path, 3)
    run_id = fleet.start(config, "prac-lth/digits")
    with pytest.raises(UserError) as stuck:
        fleet.Waiting(POOL).first_done([run_id])
    assert f"no worker of work pool '{POOL}' has taken flow run prac-seed3 ({run_id})" in str(stuck.value)
    assert "in 1 s (PRAC_PICKUP_WAIT_S)" in str(stuck.value) and "run again waits for them" in str(stuck.value)
    assert _state(run_id).is_scheduled()  # left for a worker that comes online; run again, the comparison re-attaches
    assert fleet.start(config, "prac-lth/digits") == run_id
