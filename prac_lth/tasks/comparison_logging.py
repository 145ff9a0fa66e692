"""What a comparison run in MLflow holds (docs/design.md §3): its conclusions as metrics, its tables as Parquet and its
figures as PNG under figures/. Idempotent: the same comparison finds its run again, logs no metric value twice,
and replaces its tables and figures."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from prac.reporting import comparison, paired
from prac.reporting.best_tickets import BestTicket, best_tickets, tickets_frame
from prac.reporting.comparison_figure_set import HEADLINE, figure_set
from prac.reporting.comparison_inputs import runs_of
from prac.layout.fingerprint import fingerprint
from prac.settings.config import ExperimentConfig
from prac.reporting.report import method_summary
from prac_lth.tasks import ticket_registry, tracking, tracking_runs

CONCLUSIONS = ("matched_sparsity", "iteration_saving", "iteration_saving_without_round0")
HEADLINE_METHOD = "prac"  # its conclusions also go under the bare names
FIGURES = "figures"
TABLES = ("rounds.parquet", "per_sparsity.parquet", "summary.parquet", "paired.parquet")
EXPERIMENTS = "experiments.parquet"  # which run, worker and machine each experiment was
TICKETS = "tickets.parquet"  # the trained ticket each method recommends (prac.reporting.best_tickets)


def experiments_table(run_id: str, configs: list[ExperimentConfig]) -> pd.DataFrame:
    """Per experiment: its MLflow parent run, the Prefect worker and the machine it ran on (last)."""
    experiment_id = tracking.client().get_run(run_id).info.experiment_id
    prints = {(c.method, c.seed): fingerprint(c) for c in configs}
    runs = tracking_runs.experiment_runs(experiment_id, sorted(set(prints.values())))
    rows = []
    for (method, seed), fp in prints.items():
        tags = runs[fp].data.tags if fp in runs else {}
        rows.append({"method": method, "seed": seed, "fingerprint": fp,
                     "run_id": runs[fp].info.run_id if fp in runs else None,
                     "worker": tags.get("prac.worker"), "host": tags.get("prac.host")})
    return pd.DataFrame(rows)


def identity(preset: str, methods: list[str], seeds: list[int], overrides: list[str] | None,
             code_version: str | None = None, margin: float = paired.DEFAULT_MARGIN) -> tuple[str, dict[str, str]]:
    """The comparison run's name and params: the same comparison (by the same code: prac.code_version, and the
    same non-inferiority margin, a param only where not the default) finds the same run
    (tracking.comparison_run)."""
    return (f"compare {','.join(methods)} seeds {seeds}",
            {"preset": preset, "methods": ",".join(methods), "seeds": ",".join(map(str, seeds)),
             "overrides": " ".join(overrides or []), **({"code_version": code_version} if code_version else {}),
             **({"noninferiority_margin": f"{margin:g}"} if margin != paired.DEFAULT_MARGIN else {})})


def paired_conclusions(pairs: pd.DataFrame, margin: float) -> dict[str, float]:
    """Per method and reference (`<method>-vs-<reference>`): the rounds it is ahead and behind, paired over seeds,
    and the median half-width of the 95 % interval (the difference these seeds resolve); against lt also the
    sparsity up to which it is non-inferior (`noninferior_sparsity/<method>`, prac's also bare)."""
    metrics: dict[str, float] = {}
    if pairs.empty or pairs["seeds"].max() < 2:
        return metrics
    for (method, reference), rows in pairs.groupby(["method", "reference"]):
        pair = f"{method}-vs-{reference}"
        metrics[f"paired_rounds_ahead/{pair}"] = float((rows["verdict"] == "ahead").sum())
        metrics[f"paired_rounds_behind/{pair}"] = float((rows["verdict"] == "behind").sum())
        metrics[f"paired_half_width/{pair}"] = float(rows["half_width"].median())
    for method, through in paired.noninferiority(pairs, margin).items():
        if not math.isnan(through):
            metrics[f"noninferior_sparsity/{method}"] = through
            if method == HEADLINE_METHOD:
                metrics["noninferior_sparsity"] = through
    return metrics


def conclusions(table: pd.DataFrame) -> dict[str, float]:
    """Every method's match with lt as `<name>/<method>`, prac's also as `<name>`; NaN (no match) left out."""
    metrics: dict[str, float] = {}
    for match in comparison.matches(table):
        for name in CONCLUSIONS:
            value = getattr(match, name)
            if math.isnan(value):
                continue
            metrics[f"{name}/{match.method}"] = value
            if match.method == HEADLINE_METHOD:
                metrics[name] = value
    return metrics


def ticket_metrics(tickets: list[BestTicket]) -> dict[str, float]:
    """Per method, where its recommended ticket is, what it weighs and how fast it answers: `ticket_sparsity/<method>`,
    `ticket_test_acc/<method>`, `ticket_bytes/<method>`, `ticket_size_ratio/<method>` (dense float32 / on disk),
    `ticket_latency_us/<method>` (batch 1, the exported sparse module) and `ticket_speedup/<method>` (its dense
    layers' latency / that)."""
    metrics = {}
    for t in tickets:
        metrics |= {f"ticket_sparsity/{t.method}": t.sparsity, f"ticket_test_acc/{t.method}": t.ticket_test_acc,
                    f"ticket_bytes/{t.method}": float(t.file_bytes),
                    f"ticket_size_ratio/{t.method}": t.dense_bytes / t.file_bytes,
                    f"ticket_latency_us/{t.method}": t.latency_us,
                    f"ticket_speedup/{t.method}": t.dense_latency_us / t.latency_us}
    return metrics


def log_tickets(run_id: str, table: pd.DataFrame, configs: list[ExperimentConfig]) -> dict[str, str]:
    """The trained ticket each method recommends: its table and metrics on the comparison run, and in the Model
    Registry with the alias `best` (prac_lth.tasks.ticket_registry). Returns {method: 'name@version'}."""
    tickets = best_tickets(table, configs)
    tracking.log_table(run_id, tickets_frame(tickets), TICKETS)
    tracking.log_metrics(run_id, ticket_metrics(tickets))
    experiment_id = tracking.client().get_run(run_id).info.experiment_id
    return ticket_registry.register_best(experiment_id, run_id, configs[0].preset, tickets, configs)


def figure_path(name: str) -> str:
    return f"{FIGURES}/{name}.png"


def log_comparison(run_id: str, rows: list[dict[str, Any]], configs: list[ExperimentConfig], title: str,
                   note=print, margin: float = paired.DEFAULT_MARGIN) -> list[str]:
    """Log the comparison of `rows` (per-round rows with method and seed) to its run; `configs` locate the
    experiments' masks and PrAC sets; `margin`: the non-inferiority margin (a fraction). Returns the figures'
    artifact paths."""
    frame, table, pairs = pd.DataFrame(rows), comparison.per_sparsity(rows), paired.paired_table(rows)
    tracking.log_table(run_id, frame, "rounds.json")  # what earlier versions logged; readers may rely on it
    for artifact, data in zip(TABLES, (frame, table, method_summary(table, pairs, margin), pairs)):
        tracking.log_table(run_id, data, artifact)
    tracking.log_metrics(run_id, {**conclusions(table), **paired_conclusions(pairs, margin)})
    tracking.log_table(run_id, experiments_table(run_id, configs), EXPERIMENTS)
    log_tickets(run_id, table, configs)
    paths = []
    for name, figure in figure_set(rows, runs_of(configs), title, note, margin).items():
        tracking.log_figure(run_id, figure, figure_path(name))
        paths.append(figure_path(name))
    return paths


@task(name="log-comparison", cache_policy=NO_CACHE)
def log_comparison_task(run_id: str, rows: list[dict[str, Any]], configs: list[ExperimentConfig], title: str,
                        margin: float = paired.DEFAULT_MARGIN) -> list[str]:
    logger = get_run_logger()
    return log_comparison(run_id, rows, configs, title, note=logger.warning, margin=margin)


def link(experiment_id: str, run_id: str) -> str:
    """The comparison run in the MLflow UI, opened on its headline figure (the figures/ folder beside it)."""
    return tracking.run_link(experiment_id, run_id, artifact=figure_path(HEADLINE))


def find_link(preset: str, methods: list[str], seeds: list[int], overrides: list[str] | None,
              code_version: str | None = None, margin: float = paired.DEFAULT_MARGIN) -> str | None:
    """The link of this comparison's run, if it was logged (for the CLI, after the flow)."""
    experiment = tracking.client().get_experiment_by_name(tracking.experiment_name(preset))
    if experiment is None:
        return None
    run_id = tracking_runs.find_comparison_run(experiment.experiment_id,
                                          *identity(preset, methods, seeds, overrides, code_version, margin))
    return link(experiment.experiment_id, run_id) if run_id else None
