"""Cache keys of the stages: fingerprint + round + stage, stored beside the run's artifacts, so a
re-run (or a retry, or a fresh process) skips every finished stage and restarts at the failed one."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.cache_policies import CacheKeyFnPolicy, CachePolicy

from prac.config import ExperimentConfig
from prac.fingerprint import fingerprint, round0_fingerprint


def stage_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    config = ExperimentConfig.model_validate(parameters["config"])
    stage = context.task.name
    round_index = parameters.get("round_index")
    if stage == "train-round" and round_index == 0:
        return f"round0-{round0_fingerprint(config)}-train-round"  # shared by the arms
    suffix = "" if round_index is None else f"-r{round_index:02d}"
    return f"{fingerprint(config)}-{stage}{suffix}"


def cache_dir(output_dir: str) -> Path:
    return Path(output_dir).resolve() / ".prefect-cache"


def stage_cache_policy(output_dir: str) -> CachePolicy:
    return CacheKeyFnPolicy(cache_key_fn=stage_cache_key).configure(key_storage=str(cache_dir(output_dir)))
