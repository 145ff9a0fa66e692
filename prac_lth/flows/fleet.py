"""A comparison's experiments spread over a work pool: each experiment is a flow run of the `prac-lth/<dataset>`
deployment, started with Prefect's run_deployment, so each lands on whichever worker of the pool is free (the
shared rounds 0 first, then every other experiment at once: prac.imp.concurrency's order). The workers and the
comparison share runtime.output_dir (docker/compose.yaml's /runs volume): an experiment's records are read back
from its finished folder, as a local comparison reads them.

Each flow run carries an idempotency key made of the experiment's fingerprint and code version: a comparison run
again (retried, or started again after a failure) re-attaches to the flow runs that are still going or finished
instead of starting duplicates; one that failed, crashed or was cancelled gets a new attempt, which resumes from
its cached stages.

A pool that cannot run them is reported rather than waited on: before anything starts, a pool that is paused or has
no worker online (check_pool); later, a comparison none of whose flow runs a worker has taken for PRAC_PICKUP_WAIT_S
seconds (600 by default), with the pool's name. Those flow runs stay scheduled: a worker that comes online runs
them, and the comparison run again re-attaches to them. A worker that dies is the automations' business
(prac_lth/deployments/zombies.py): they mark its flow run Crashed, and the comparison ends saying so."""
from __future__ import annotations

import itertools
import os
import time
from typing import Any, Callable, NamedTuple
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, WorkerStatus, WorkPoolStatus
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from prac.code_version import code_version_of
from prac.errors import UserError
from prac.experiment import finished_rounds
from prac.imp.concurrency import round0_first
from prac.layout.fingerprint import fingerprint
from prac.settings.config import ExperimentConfig

Records = list[dict[str, Any]]
POLL_S = 2.0  # how often the comparison asks the server how its experiments are doing
PICKUP_S = 600  # a comparison none of whose flow runs a worker took for this long is stuck (PRAC_PICKUP_WAIT_S)


class OnPool(NamedTuple):
    """Where a comparison's experiments run: flow runs of `deployment`, which is on work pool `pool`."""
    pool: str
    deployment: str


def experiment_deployment(config: ExperimentConfig) -> str:
    """The deployment an experiment runs as: prefect.yaml names them after their dataset."""
    return f"prac-lth/{config.data.dataset}"


def check_pool(config: ExperimentConfig, pool: str) -> OnPool:
    """The experiments' deployment, registered on `pool` on the Prefect server this process talks to, with a worker
    online to run it; else one line saying what is missing."""
    name = experiment_deployment(config)
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise UserError(f"no deployment {name} on the Prefect server at {client.api_url}: register prefect.yaml's "
                            f"deployments there (prefect deploy --all) and point PREFECT_API_URL at it") from None
        except httpx.HTTPError as error:
            raise UserError(f"cannot reach the Prefect server at {client.api_url}: {error}") from None
        if deployment.work_pool_name != pool:
            try:
                client.read_work_pool(pool)
            except ObjectNotFound:
                raise UserError(f"no work pool {pool!r} on the Prefect server at {client.api_url} (deployment {name} "
                                f"runs on work pool {deployment.work_pool_name!r})") from None
            raise UserError(f"deployment {name} runs on work pool {deployment.work_pool_name!r}, not {pool!r}")
        if why := _cannot_run(client, pool):
            raise UserError(f"work pool {pool!r} {why}: nothing was started")
    return OnPool(pool, name)


def _cannot_run(client, pool: str) -> str | None:
    """Why no flow run of `pool` would start now (paused, or no worker online); None if one would."""
    work_pool = client.read_work_pool(pool)
    if work_pool.status == WorkPoolStatus.PAUSED:
        return f"is paused (prefect work-pool resume {pool})"
    if work_pool.type.endswith((":push", ":managed")):  # no workers of ours: the cloud starts each flow run
        return None
    if not any(worker.status == WorkerStatus.ONLINE for worker in client.read_workers_for_work_pool(pool)):
        return f"has no worker online on the Prefect server at {client.api_url} (prefect worker start --pool {pool})"
    return None


def own_pool() -> str | None:
    """The work pool of the deployment this flow run belongs to; None outside a deployment or for a served one."""
    from prefect.runtime import deployment

    if not deployment.id:
        return None
    with get_client(sync_client=True) as client:
        return client.read_deployment(deployment.id).work_pool_name


def experiment_key(config: ExperimentConfig, attempt: int) -> str:
    return f"prac-lth-{fingerprint(config)}-{code_version_of(config)}-{attempt}"


def attach_or_start(deployment: str, key: Callable[[int], str], completed_is_done: Callable[[], bool],
                    **run_args: Any) -> UUID:
    """A flow run of `deployment` (a subflow of the caller's): the one an earlier attempt with the same idempotency
    key started, if it is still going, or completed and `completed_is_done()`; else a new attempt's."""
    for attempt in itertools.count():
        run = run_deployment(deployment, timeout=0, as_subflow=True, idempotency_key=key(attempt), **run_args)
        state = run.state
        if state is None or not state.is_final() or (state.is_completed() and completed_is_done()):
            return run.id


def start(config: ExperimentConfig, deployment: str) -> UUID:
    """The experiment's flow run: new, or the one an earlier attempt of this comparison started if it is still
    going or finished with its results on disk."""
    return attach_or_start(deployment, lambda attempt: experiment_key(config, attempt),
                           lambda: finished_rounds(config) is not None,
                           flow_run_name=f"{config.method}-seed{config.seed}",
                           parameters={"preset": config.preset, "method": config.method, "seed": config.seed,
                                       "config": config.model_dump(mode="json")})


def pickup_seconds() -> float:
    return float(os.environ.get("PRAC_PICKUP_WAIT_S", PICKUP_S))


class Waiting:
    """Waits for the first of the comparison's flow runs to end. While some of them are with a worker (pending,
    running), the others wait their turn however long; when none has been for pickup_seconds(), the pool is
    stuck, and the comparison ends saying so."""

    def __init__(self, pool: str) -> None:
        self.pool = pool
        self.last_taken = time.monotonic()

    def first_done(self, runs: list[UUID]) -> UUID:
        with get_client(sync_client=True) as client:
            while True:
                flow_runs = [client.read_flow_run(run_id) for run_id in runs]
                if done := next((run for run in flow_runs if run.state is not None and run.state.is_final()), None):
                    self.last_taken = time.monotonic()  # the next ones start now
                    return done.id
                if any(run.state is not None and not run.state.is_scheduled() for run in flow_runs):
                    self.last_taken = time.monotonic()
                elif time.monotonic() - self.last_taken > pickup_seconds():
                    raise UserError(self._stuck(client, flow_runs[0]))
                time.sleep(POLL_S)

    def _stuck(self, client, run: FlowRun) -> str:
        why = _cannot_run(client, self.pool) or "has workers online, busy with other flow runs"
        return (f"no worker of work pool {self.pool!r} has taken flow run {run.name} ({run.id}) nor any other of "
                f"this comparison's in {pickup_seconds():.0f} s (PRAC_PICKUP_WAIT_S): work pool {self.pool!r} {why}; "
                f"the flow runs stay scheduled, and the comparison run again waits for them")


def _records(config: ExperimentConfig, run_id: UUID) -> Records:
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    what = f"{config.method} · seed {config.seed} (flow run {run.name}, {run_id})"
    if not run.state.is_completed():
        raise UserError(f"experiment {what} ended {run.state.name}: {run.state.message or 'no message'}; run the "
                        f"comparison again to resume it from its cached stages")
    records = finished_rounds(config)
    if records is None:
        raise UserError(f"experiment {what} completed, but its results are not in {config.runtime.output_dir}: the "
                        f"comparison and the pool's workers must share that folder (runtime.output_dir)")
    return [vars(r) for r in records]


def run_on_pool(configs: list[ExperimentConfig], on_pool: OnPool,
                finished: Callable[[ExperimentConfig, Records], None]) -> None:
    waiting = Waiting(on_pool.pool)
    for config, run_id in round0_first(configs, lambda c: start(c, on_pool.deployment), waiting.first_done):
        finished(config, _records(config, run_id))
