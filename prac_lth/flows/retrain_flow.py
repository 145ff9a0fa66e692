"""The flow `prac-lth-retrain`: one ticket retrain of an experiment (the mask of round `round_index` on all of D0,
the full schedule) as a flow run of its own. An experiment's flow run on a work pool with runtime.retrain_alongside
starts it (prac_lth/flows/pool_retrains.py), so that a free worker trains the ticket of round r while the
experiment's worker goes on with round r+1. It runs the same cached task as the experiment's own flow run would:
either one finds the other's finished retrain Cached and resumes its epoch checkpoint."""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from prac.artifacts.refs import ArtifactRef
from prac.artifacts.storage import storage_errors_as_user_errors
from prac.imp.stage_table import RETRAIN
from prac_lth.flows.config_params import experiment_config
from prac_lth.flows.device_slot import gpu_slot
from prac_lth.flows.task_steps import TaskSteps
from prac_lth.outages import outages_as_user_errors


@flow(name="prac-lth-retrain", flow_run_name="{method}-seed{seed}-retrain{round_index}", log_prints=True,
      validate_parameters=False)  # prac_lth.flows.config_params checks them
@storage_errors_as_user_errors
@outages_as_user_errors  # so does a Prefect server that stopped answering (prac_lth/outages.py)
def prac_lth_retrain(preset: str, method: str, seed: int, round_index: int, mask: dict[str, str],
                     config: dict[str, Any]) -> dict[str, str]:
    """`mask`: the round's mask (its path in the output folder the workers share, and its checksum); `config`: the
    experiment's config, serialised. Returns the reference of the round's ticket.json."""
    built = experiment_config(preset, method, seed, None, config)
    with gpu_slot():  # a slot of the GPU's concurrency limit where the worker names one (PRAC_GPU_LIMIT)
        ref: ArtifactRef = TaskSteps(built, [], get_run_logger().warning).run(RETRAIN, round_index, mask=mask)
    return dict(ref)  # (an ArtifactRef: a TypedDict, which Prefect's parameter schema of Python 3.11 cannot take)
