"""Cache keys and storage of the stages.

A stage's key is fingerprint + round + stage + the science code's version (prac.code_version) + the digest
of the data's content as loaded (prac.data.digest: files replaced under the same name are other data) + the
checksums of the artifacts it reads (and, for a method at the prac run's budget, a digest of what it reads
from that run: prac.imp.budget.budget_digest): a re-run (or a retry, or a fresh process, or another worker) skips
every finished stage and restarts at the failed one; new code recomputes instead of returning what old
code found; and a recomputed stage whose output changed recomputes what reads it, nothing else. The
precision a run trains in is in its fingerprint (prac.layout.fingerprint.precision_of). Keys and Prefect's
persisted results both live in the experiment's output folder, so resuming needs that folder only.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from prefect.cache_policies import CacheKeyFnPolicy, CachePolicy

from prac_lth.tasks.context import experiment_context
from prac.code_version import code_version_of
from prac.settings.config import ExperimentConfig
from prac.layout.fingerprint import fingerprint, round0_fingerprint
from prac.imp.budget import budget_digest
from prac.imp.stage_table import STAGES


def _inputs_digest(parameters: dict[str, Any]) -> str:
    """The checksums of the artifact references a stage reads (its `inputs`, by name; none: empty)."""
    refs = [f"{name}={value['sha256']}" for name, value in sorted(parameters.get("inputs", {}).items())
            if isinstance(value, dict) and "sha256" in value]
    return "-" + hashlib.sha256(";".join(refs).encode()).hexdigest()[:12] if refs else ""


def stage_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    config: ExperimentConfig = parameters["config"]  # the flow's validated config itself, not re-validated
    stage = context.task.name
    round_index = parameters.get("round_index")
    # what produced it: this code, from this data (its content: files replaced under the same name are other data)
    code = f"{code_version_of(config)}-d{experiment_context(config).data_digest}"
    if round_index == 0 and stage in STAGES and STAGES[stage].shared_round0:
        return f"round0-{round0_fingerprint(config)}-{stage}-{code}"  # shared by the arms
    suffix = "" if round_index is None else f"-r{round_index:02d}"
    if round_index is not None:  # a method at the prac run's budget: keyed by what that run spent (prac.imp.budget)
        budget = budget_digest(config, round_index)
        suffix += f"-budget{budget}" if budget else ""
    return f"{fingerprint(config)}-{stage}{suffix}-{code}{_inputs_digest(parameters)}"


def cache_dir(output_dir: str) -> Path:
    return Path(output_dir).resolve() / ".prefect-cache"


def results_dir(output_dir: str) -> Path:
    return Path(output_dir).resolve() / ".prefect-results"


def stage_cache_policy(output_dir: str) -> CachePolicy:
    return CacheKeyFnPolicy(cache_key_fn=stage_cache_key).configure(key_storage=str(cache_dir(output_dir)))


def stage_options(output_dir: str) -> dict[str, Any]:
    """`with_options` of a stage task: its cache keys and its persisted results under the output folder
    (a Path is local storage that needs no block saved on the server, so any worker reads it)."""
    return {"cache_policy": stage_cache_policy(output_dir), "result_storage": results_dir(output_dir)}
