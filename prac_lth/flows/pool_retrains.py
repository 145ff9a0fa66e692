"""An experiment's ticket retrains as flow runs of their own on its work pool (runtime.retrain_alongside, the
experiment itself a flow run of a deployment on a pool): each starts as soon as its mask exists, as a flow run of
`prac-lth-retrain/<dataset>` (prac_lth/flows/retrain_flow.py) that whichever worker is free takes, while the
experiment's worker goes on with the next round.

A retrain no worker has taken WAIT_S seconds after it was started, once the experiment needs its ticket (at its
end), is not waited for: the experiment cancels that flow run and retrains the ticket itself. On a pool whose
every worker runs an experiment that waits for its tickets, nothing else would ever take them. Each flow run carries an idempotency key (fingerprint, code
version, round, attempt): a resumed experiment re-attaches to a retrain still going or finished."""
from __future__ import annotations

import os
import time
from typing import Callable
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled

from prac.artifacts.refs import ArtifactRef, make_ref
from prac.code_version import code_version_of
from prac.layout.fingerprint import fingerprint
from prac.layout.run_paths import run_paths
from prac.settings.config import ExperimentConfig
from prac_lth.flows.fleet import attach_or_start, own_pool

POLL_S = 2.0
# A worker asks for work every PREFECT_WORKER_QUERY_SECONDS (10 by default): one that is free takes a retrain
# well within this; PRAC_RETRAIN_WAIT_S sets another
WAIT_S = float(os.environ.get("PRAC_RETRAIN_WAIT_S", "30"))


def retrain_deployment(config: ExperimentConfig, pool: str) -> str | None:
    """`prac-lth-retrain/<dataset>` if it is registered on `pool` (prefect.yaml), else None."""
    name = f"prac-lth-retrain/{config.data.dataset}"
    with get_client(sync_client=True) as client:
        try:
            return name if client.read_deployment_by_name(name).work_pool_name == pool else None
        except ObjectNotFound:
            return None


def on_own_pool(config: ExperimentConfig) -> str | None:
    """With runtime.retrain_alongside, in a flow run of a deployment on a pool that has the retrain deployment:
    its name; else None (retrains alongside run in a second process of this flow run)."""
    if not config.runtime.retrain_alongside or (pool := own_pool()) is None:
        return None
    return retrain_deployment(config, pool)


def _key(config: ExperimentConfig, round_index: int, attempt: int) -> str:
    return f"prac-lth-retrain-{fingerprint(config)}-{code_version_of(config)}-r{round_index}-{attempt}"


class PoolRetrain:
    """A ticket retrain as a flow run on the pool (prac.imp.imp_loop.Pending). `retrain_here`: the retrain in the
    experiment's own flow run, for a retrain no worker took, or one whose flow run did not complete."""

    def __init__(self, config: ExperimentConfig, deployment: str, round_index: int, mask: ArtifactRef,
                 retrain_here: Callable[[], ArtifactRef]):
        self.config, self.round_index, self.retrain_here = config, round_index, retrain_here
        self.run_id, self.started = self._start(deployment, mask), time.monotonic()

    def _start(self, deployment: str, mask: ArtifactRef) -> UUID:
        c, r = self.config, self.round_index
        return attach_or_start(deployment, lambda attempt: _key(c, r, attempt), lambda: True,
                               flow_run_name=f"{c.method}-seed{c.seed}-retrain{r}",
                               parameters={"preset": c.preset, "method": c.method, "seed": c.seed, "round_index": r,
                                           "mask": mask, "config": c.model_dump(mode="json")})

    def _state(self):
        with get_client(sync_client=True) as client:
            return client.read_flow_run(self.run_id).state

    def done(self) -> bool:
        state = self._state()
        return state is not None and state.is_final()

    def result(self) -> ArtifactRef:
        while not (state := self._state()).is_final():
            if state.type == StateType.SCHEDULED and time.monotonic() - self.started > WAIT_S and self._cancel():
                # no worker has taken it: here
                return self.retrain_here()
            time.sleep(POLL_S)
        if not state.is_completed():  # failed, crashed or cancelled: here, from its epoch checkpoint if any
            return self.retrain_here()
        return make_ref(run_paths(self.config).round(self.round_index) / "ticket.json")

    def _cancel(self) -> bool:
        """Cancel the flow run if no worker has started it (a worker that took it meanwhile then aborts it: its
        state is final); False if the server keeps it going."""
        with get_client(sync_client=True) as client:
            response = client.set_flow_run_state(self.run_id, Cancelled(
                message="no worker took it before its experiment needed the ticket: retrained there"))
        return response.status == SetStateStatus.ACCEPT
