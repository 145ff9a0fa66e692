"""The flow `prac-lth-compare`: methods × seeds of one preset as subflows, then their comparison logged to MLflow as
a comparison run (tag prac.kind=comparison: conclusions as metrics, tables, figures) and shown on the flow run
as Prefect artifacts (progress while the experiments run, the summary with the run's link, the per-sparsity
table)."""
from __future__ import annotations

import json
import re
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)
from prefect.runtime import deployment

from prac_lth.flows.config_params import (check_comparison, check_deployment_dataset, check_margin,
                                          comparison_configs)
from prac_lth.flows import fleet
from prac_lth.flows.experiments import run_experiments
from prac.artifacts.storage import storage_errors_as_user_errors
from prac.code_version import code_version_of
from prac.errors import UserError
from prac.reporting.best_tickets import best_tickets
from prac.reporting import paired
from prac.reporting.comparison import per_sparsity
from prac.reporting.report import summary_markdown
from prac_lth.outages import outages_as_user_errors
from prac_lth.stops import run_status
from prac_lth.tasks import chart_view, comparison_logging, tracking, tracking_runs


def artifact_key(preset: str, what: str) -> str:
    """Prefect artifact keys take lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"prac-lth-compare-{preset}-{what}".lower())


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of plain JSON values (numpy scalars are not; NaN becomes null), four decimals."""
    return json.loads(table.round(4).to_json(orient="records"))


@flow(name="prac-lth-compare", flow_run_name="compare-{preset}", log_prints=True,
      validate_parameters=False)  # prac_lth.flows.config_params checks them
@storage_errors_as_user_errors  # a full disk fails the flow run with one line naming the file
@outages_as_user_errors  # so does a Prefect server that stopped answering (prac_lth/outages.py)
def compare(preset: str = "digits", methods: list[str] | None = None, seeds: list[int] | None = None,
            overrides: list[str] | None = None, parallel: int = 1,
            configs: list[dict[str, Any]] | None = None, pool: str | None = None,
            margin: float = 100 * paired.DEFAULT_MARGIN) -> list[dict[str, Any]]:
    """`parallel` experiments at once, as separate processes (prac_lth/flows/experiments.py); 1: one after another.
    `configs`: the experiments' configs already built (the CLI passes them, serialised, seed by seed and method
    by method): not built again. `pool`: each experiment a flow run of the `prac-lth/<dataset>` deployment on that
    work pool (prac_lth/flows/fleet.py); a comparison that runs as a deployment on a pool uses its own pool.
    `margin`: the non-inferiority margin in accuracy points (prac.reporting.paired)."""
    methods, seeds = methods if methods is not None else ["prac", "lt"], seeds if seeds is not None else [0]
    check_comparison(methods, seeds, parallel)
    built = comparison_configs(preset, methods, seeds, overrides, configs)  # all checked before any trains
    check_deployment_dataset(built[0], deployment.name)
    if pool is not None and not isinstance(pool, str):
        raise UserError(f"parameter pool must be a work pool's name, got {pool!r}")
    margin = check_margin(margin)
    pool = pool or fleet.own_pool()
    on_pool = fleet.check_pool(built[0], pool) if pool else None
    logger = get_run_logger()
    title = f"{preset}: {', '.join(methods)} · seeds {','.join(map(str, seeds))}"
    progress = create_progress_artifact(0.0, key=artifact_key(preset, "progress"),
                                        description=f"{title}: 0 of {len(built)} experiments finished")
    finished: list[str] = []

    def on_done(method: str, seed: int, records: list[dict[str, Any]]) -> None:
        finished.append(f"{method} · seed {seed}")
        update_progress_artifact(progress, 100.0 * len(finished) / len(built),
                                 description=f"{title}: {len(finished)} of {len(built)} experiments finished "
                                             f"(last: {finished[-1]})")

    results = run_experiments(built, parallel, on_done, on_pool)
    rows = [{"method": c.method, "seed": c.seed, **record} for c in built for record in results[(c.method, c.seed)]]
    experiment_id = tracking.ensure_experiment(preset)
    run_id = tracking_runs.comparison_run(experiment_id, *comparison_logging.identity(
        preset, methods, seeds, overrides, code_version_of(built[0]), margin))
    try:
        comparison_logging.log_comparison_task(run_id, rows, built, title, margin)
    except BaseException as exc:
        tracking.finish_run(run_id, run_status(exc))
        raise
    tracking.finish_run(run_id)
    chart_view.share_methods_view(experiment_id)
    link, charts = comparison_logging.link(experiment_id, run_id), chart_view.methods_chart_link(experiment_id)
    table, pairs = per_sparsity(rows), paired.paired_table(rows)
    create_markdown_artifact(summary_markdown(title, table, link, tracking.ui_command(), charts, pairs, margin,
                                              best_tickets(table, built)),
                             key=artifact_key(preset, "summary"), description=f"{title}: conclusions")
    create_table_artifact(_records(table), key=artifact_key(preset, "per-sparsity"),
                          description=f"{title}: per method and round, tickets as mean and std over seeds")
    if len(pairs):
        create_table_artifact(_records(pairs), key=artifact_key(preset, "paired"),
                              description=f"{title}: per method, reference and round, the paired difference over "
                                          "seeds with its 95 % interval, tests and verdict")
    logger.info(f"comparison logged to MLflow run {run_id}: {link}; every method round by round: {charts}")
    return rows
