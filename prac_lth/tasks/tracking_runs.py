"""Finding or creating the runs of docs/design.md §3 (beside ``prac_lth.tasks.tracking``, whose client it uses).

One parent run per arm x seed (``prac.kind=experiment``, found again by ``prac.fingerprint``), a
nested child run per round (``prac.kind=round``), and comparison runs (``prac.kind=comparison``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from collections.abc import Mapping

from mlflow import MlflowClient
from mlflow.entities import Param, Run
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from prac_lth.tasks.tracking import client

log = logging.getLogger(__name__)

ParamValue = str | int | float | bool | None
_PARAMS_PER_BATCH = 100  # MLflow's log_batch limit


def _quote(value: str) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


def _find(c: MlflowClient, experiment_id: str, tags: Mapping[str, str], exclude_kinds=()) -> Run | None:
    """The oldest active run of the experiment carrying all ``tags`` (and no excluded prac.kind)."""
    where = " and ".join(f"tags.`{k}` = {_quote(v)}" for k, v in tags.items())
    runs = c.search_runs([experiment_id], filter_string=where, order_by=["attributes.start_time ASC"])
    for run in runs:
        if run.data.tags.get("prac.kind") not in exclude_kinds:
            return run
    return None


def _reopen(c: MlflowClient, run: Run) -> str:
    if run.info.status != "RUNNING":
        c.update_run(run.info.run_id, status="RUNNING")
    return run.info.run_id


def _log_params(c: MlflowClient, run: Run, params: Mapping[str, ParamValue]) -> None:
    """Log the params the run does not have yet (MLflow params are immutable)."""
    present = run.data.params
    new = []
    for key, value in params.items():
        text = str(value)
        if key not in present:
            new.append(Param(key, text))
        elif present[key] != text:
            log.warning("run %s: param %s is %r, not %r (params are immutable; kept)",
                        run.info.run_id, key, present[key], text)
    for start in range(0, len(new), _PARAMS_PER_BATCH):
        c.log_batch(run.info.run_id, params=new[start : start + _PARAMS_PER_BATCH])


def parent_run(experiment_id: str, fingerprint: str, method: str, seed: int,
               params: Mapping[str, ParamValue], run_name: str | None = None, code_version: str | None = None,
               data_digest: str | None = None) -> str:
    """The run of one arm x seed: found again by ``prac.fingerprint``, ``prac.code_version`` and
    ``prac.data_digest`` (results of other code or other data get a run of their own; set back to RUNNING), or created with its tags and all params
    (flattened config, dotted keys)."""
    c = client()
    identity = {"prac.fingerprint": fingerprint, **({"prac.code_version": code_version} if code_version else {}),
                **({"prac.data_digest": data_digest} if data_digest else {})}
    run = _find(c, experiment_id, identity, exclude_kinds=("comparison", "round"))
    if run is None:
        run = c.create_run(experiment_id, run_name=run_name, tags={
            "prac.method": method, "prac.seed": str(seed), "prac.kind": "experiment", **identity,
        })
    _log_params(c, run, params)
    for key, value in where_it_runs().items():  # the latest attempt's: a resumed run may move to another worker
        c.set_tag(run.info.run_id, key, value)
    return _reopen(c, run)


def where_it_runs() -> dict[str, str]:
    """The Prefect worker (its name, which a worker passes to its flow runs; "local" outside a work pool) and the
    machine running this experiment."""
    return {"prac.worker": os.environ.get("PREFECT__WORKER_NAME") or "local", "prac.host": socket.gethostname()}


def experiment_runs(experiment_id: str, fingerprints: list[str]) -> dict[str, Run]:
    """The latest parent run of each fingerprint (a fingerprint computed by other code or from other data has
    several: the latest is the comparison's). MLflow's search has no IN for tags: one query each."""
    c, found = client(), {}
    for fp in fingerprints:
        where = f"tags.`prac.kind` = 'experiment' and tags.`prac.fingerprint` = {_quote(fp)}"
        if runs := c.search_runs([experiment_id], filter_string=where, order_by=["attributes.start_time DESC"],
                                 max_results=1):
            found[fp] = runs[0]
    return found


def round_child_run(experiment_id: str, parent_run_id: str, round_index: int) -> str:
    """The nested run carrying round ``round_index``'s per-epoch curves (found again if it exists)."""
    c = client()
    tags = {MLFLOW_PARENT_RUN_ID: parent_run_id, "prac.kind": "round", "prac.round": str(round_index)}
    run = _find(c, experiment_id, tags)
    if run is None:
        parent = c.get_run(parent_run_id).data.tags
        extra = {k: parent[k] for k in ("prac.method", "prac.seed", "prac.fingerprint") if k in parent}
        run = c.create_run(experiment_id, run_name=f"round_{round_index:02d}", tags={**extra, **tags})
    return _reopen(c, run)


def _comparison_tags(name: str, params: Mapping[str, ParamValue]) -> dict[str, str]:
    key = hashlib.sha256(json.dumps({k: str(v) for k, v in params.items()}, sort_keys=True).encode()).hexdigest()[:16]
    return {"prac.kind": "comparison", "prac.comparison_key": key, "mlflow.runName": name}


def find_comparison_run(experiment_id: str, name: str, params: Mapping[str, ParamValue]) -> str | None:
    """The id of the comparison run ``comparison_run`` gives for this name and params, if there is one
    (found, not reopened: for printing its link after the flow)."""
    run = _find(client(), experiment_id, _comparison_tags(name, params))
    return run.info.run_id if run is not None else None


def comparison_run(experiment_id: str, name: str, params: Mapping[str, ParamValue]) -> str:
    """A ``prac.kind=comparison`` run; the same name and params find the same run again."""
    c = client()
    tags = _comparison_tags(name, params)
    key = tags["prac.comparison_key"]
    run = _find(c, experiment_id, tags)
    if run is None:
        run = c.create_run(experiment_id, run_name=name, tags={"prac.kind": "comparison", "prac.comparison_key": key})
    _log_params(c, run, params)
    return _reopen(c, run)
