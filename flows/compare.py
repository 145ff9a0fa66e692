"""The flow `prac-lth-compare`: methods × seeds of one preset as subflows, their per-round figures
gathered into one table logged to MLflow as a comparison run (tag prac.kind=comparison)."""
from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from flows.config_params import experiment_config
from flows.prac_lth import prac_lth
from tasks import tracking


@flow(name="prac-lth-compare", log_prints=True)
def compare(preset: str = "digits", methods: list[str] | None = None, seeds: list[int] | None = None,
            overrides: list[str] | None = None) -> list[dict[str, Any]]:
    methods, seeds = methods or ["prac", "lt"], seeds if seeds is not None else [0]
    for method in methods:  # validate every combination before training any
        for seed in seeds:
            experiment_config(preset, method, seed, overrides)
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        for method in methods:
            records = prac_lth(preset=preset, method=method, seed=seed, overrides=overrides)
            rows += [{"method": method, "seed": seed, **record} for record in records]
    experiment_id = tracking.ensure_experiment(preset)
    run_id = tracking.comparison_run(experiment_id, f"compare {','.join(methods)} seeds {seeds}",
                                     {"preset": preset, "methods": ",".join(methods),
                                      "seeds": ",".join(map(str, seeds)), "overrides": " ".join(overrides or [])})
    tracking.log_table(run_id, pd.DataFrame(rows), "rounds.json")
    tracking.finish_run(run_id)
    get_run_logger().info(f"comparison table logged to MLflow run {run_id}")
    return rows
