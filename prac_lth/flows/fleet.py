"""A comparison's experiments spread over a work pool: each experiment is a flow run of the `prac-lth/<dataset>`
deployment, started with Prefect's run_deployment, so each lands on whichever worker of the pool is free (the
shared rounds 0 first, then every other experiment at once: prac.imp.concurrency's order). The workers and the
comparison share runtime.output_dir (docker/compose.yaml's /runs volume): an experiment's records are read back
from its finished folder, as a local comparison reads them.

Each flow run carries an idempotency key made of the experiment's fingerprint and code version: a comparison run
again (retried, or started again after a failure) re-attaches to the flow runs that are still going or finished
instead of starting duplicates; one that failed, crashed or was cancelled gets a new attempt, which resumes from
its cached stages."""
from __future__ import annotations

import itertools
import time
from typing import Any, Callable
from uuid import UUID

from prefect.client.orchestration import get_client
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


def experiment_deployment(config: ExperimentConfig) -> str:
    """The deployment an experiment runs as: prefect.yaml names them after their dataset."""
    return f"prac-lth/{config.data.dataset}"


def check_pool(config: ExperimentConfig, pool: str) -> str:
    """The experiments' deployment, registered on `pool` on the Prefect server this process talks to; else one
    line saying what is missing."""
    name = experiment_deployment(config)
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise UserError(f"no deployment {name} on the Prefect server at {client.api_url}: register prefect.yaml's "
                            f"deployments there (prefect deploy --all) and point PREFECT_API_URL at it") from None
    if deployment.work_pool_name != pool:
        raise UserError(f"deployment {name} runs on work pool {deployment.work_pool_name!r}, not {pool!r}")
    return name


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


def _first_done(runs: list[UUID]) -> UUID:
    with get_client(sync_client=True) as client:
        while True:
            for run_id in runs:
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    return run_id
            time.sleep(POLL_S)


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


def run_on_pool(configs: list[ExperimentConfig], deployment: str,
                finished: Callable[[ExperimentConfig, Records], None]) -> None:
    for config, run_id in round0_first(configs, lambda c: start(c, deployment), _first_done):
        finished(config, _records(config, run_id))
