"""The flow `prac-lth`: one experiment (preset × method × seed), its IMP rounds as Prefect tasks,
tracked in MLflow (one parent run, a child run per round) and resumable from cached stages."""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment

from prac_lth.flows.config_params import check_deployment_dataset, experiment_config, flat_params
from prac.artifacts.storage import storage_errors_as_user_errors
from prac.code_version import code_version_of
from prac.experiment import short_schedule_note, write_round_summaries
from prac.layout.fingerprint import fingerprint
from prac.imp.alongside import with_shared_cores
from prac.imp.imp_loop import RoundOutputs, run_rounds
from prac.imp.recompute import parse_recompute
from prac.reporting.report import late_ticket_line, round_line
from prac_lth.flows.device_slot import gpu_slot
from prac_lth.flows import pool_retrains
from prac_lth.flows.task_steps import TaskSteps
from prac_lth.outages import outages_as_user_errors
from prac_lth.stops import run_status
from prac_lth.tasks import stage_tasks as st
from prac_lth.tasks import tracking, tracking_runs
from prac_lth.tasks.caching import stage_options
from prac_lth.tasks.context import experiment_context
from prac_lth.tasks.experiment_lock import experiment_lock
from prac_lth.tasks.system_metrics import system_metrics
from prac_lth.tasks.round_logging import log_round_task, log_ticket_task
from prac_lth.tasks.ticket_logging import log_ticket_init_task, log_trained_ticket_task


@flow(name="prac-lth", flow_run_name="{method}-seed{seed}", log_prints=True,
      validate_parameters=False)  # prac_lth.flows.config_params checks them
@storage_errors_as_user_errors  # a full disk fails the flow run with one line naming the file
@outages_as_user_errors  # so does a Prefect server that stopped answering (prac_lth/outages.py)
def prac_lth(preset: str = "digits", method: str = "prac", seed: int = 0,
             overrides: list[str] | None = None, recompute: list[str] | None = None,
             config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Find lottery tickets for one preset × method × seed; returns the per-round records. `recompute`:
    cached stages to compute again, `STAGE` or `STAGE@ROUND` (prac.imp.recompute). `config`: the experiment's
    config already built by prac.build_config (the CLI and the compare flow pass it, serialised), instead of
    `overrides`; the config is then not built again."""
    config = experiment_config(preset, method, seed, overrides, config)
    check_deployment_dataset(config, deployment.name)
    # Retrains alongside: flow runs on this flow run's pool where it has their deployment, else a second process
    # here, which shares the cores
    retrains_on = pool_retrains.on_own_pool(config)
    config = config if retrains_on else with_shared_cores(config)
    forced = parse_recompute(recompute, config.prune.rounds)
    ctx = experiment_context(config)  # the data loaded and the bounds it sets checked before anything is written
    logger = get_run_logger()
    tracking.check_tracking_reachable(tracking.tracking_uri())  # fail fast, before any training
    experiment_id = tracking.ensure_experiment(config.preset)
    fp, code_version = fingerprint(config), code_version_of(config)
    # Results of other code are other results: a run of their own (tag prac.code_version).
    params = {**flat_params(config), "runtime.code_version": code_version}
    lock = experiment_lock(config, logger.warning)  # one flow run per experiment at a time: another waits
    run_id = tracking_runs.parent_run(experiment_id, fp, config.method, config.seed, params,
                                 run_name=f"{config.method}-seed{config.seed}", code_version=code_version,
                                 data_digest=ctx.data_digest)  # other data: a run of its own, as other code
    logger.info(f"{config.preset} · {config.method} · seed {config.seed} · fingerprint {fp} · MLflow run {run_id}")
    if note := short_schedule_note(config):
        logger.warning(note)
    try:
        # a slot of the GPU's concurrency limit where a worker names one (PRAC_GPU_LIMIT); MLflow's system metrics
        with gpu_slot(), system_metrics(run_id):
            st.prepare_run_task.with_options(**stage_options(config.runtime.output_dir))(config)

            sparsities = ctx.round_sparsities()  # each round's mask sparsity: evaluate_tickets=at: picks by it

            def on_round(out: RoundOutputs) -> None:
                logger.info(round_line(config, out.record, sparsities))
                log_round_task(experiment_id, run_id, out.record.round, out.record.metrics(), out.train, out.mask,
                               out.prac_set)
                log_ticket_init_task(config, experiment_id, run_id, out.record.round)  # m ⊙ θ_rewind, every round
                if out.ticket is not None:  # retrained in turn: the trained ticket, the model to deploy
                    log_trained_ticket_task(config, experiment_id, run_id, out.record.round)

            def on_late_ticket(out: RoundOutputs) -> None:
                logger.info(late_ticket_line(config, out.record))
                log_ticket_task(run_id, out.record.round, out.record.ticket_test_acc)
                log_trained_ticket_task(config, experiment_id, run_id, out.record.round)

            steps = TaskSteps(config, forced, logger.warning, retrains_on)
            try:
                outputs = run_rounds(config, steps, on_round, on_late_ticket, sparsities)
            except BaseException:
                steps.close(failed=True)
                raise
            steps.close()
    except BaseException as exc:
        lock.release()
        tracking.finish_run(run_id, run_status(exc))  # KILLED when stopped on purpose (Ctrl-C, SIGTERM, cancelled)
        raise
    records = [out.record for out in outputs]
    write_round_summaries(config, records)
    tracking.finish_run(run_id)
    lock.release()
    return [vars(r) for r in records]
