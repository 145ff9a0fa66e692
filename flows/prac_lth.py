"""The flow `prac-lth`: one experiment (preset × method × seed), its IMP rounds as Prefect tasks,
tracked in MLflow (one parent run, a child run per round) and resumable from cached stages."""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment

from flows.config_params import check_deployment_dataset, experiment_config, flat_params
from prac.config import ExperimentConfig
from prac.experiment import round_line, short_schedule_note, write_round_summaries
from prac.fingerprint import fingerprint
from prac.imp_loop import RoundOutputs, run_rounds
from tasks import stage_tasks as st
from tasks import tracking
from tasks.caching import stage_cache_policy
from tasks.round_logging import log_round_task, log_ticket_task
from tasks.ticket_logging import log_ticket_model_task


class TaskSteps:
    """The IMP steps as Prefect tasks, each cached by fingerprint + round + stage."""

    def __init__(self, config: ExperimentConfig):
        self.config = config.model_dump(mode="json")
        policy = stage_cache_policy(config.runtime.output_dir)
        self.tasks = {name: t.with_options(cache_policy=policy) for name, t in (
            ("train", st.train_round_task), ("dense", st.dense_predictions_task), ("cet", st.select_cet_task),
            ("prune", st.prune_task), ("cep", st.select_cep_task), ("retrain", st.retrain_task),
            ("ticket", st.ticket_from_next_round_task))}

    def train(self, r, mask, prac_set):
        return self.tasks["train"](self.config, r, mask, prac_set)

    def dense_predictions(self, round0):
        return self.tasks["dense"](self.config, round0)

    def select_cet(self, r, train, prac_set):
        return self.tasks["cet"](self.config, r, train, prac_set)

    def prune(self, r, train, mask):
        return self.tasks["prune"](self.config, r, train, mask)

    def select_cep(self, r, train, cet, dense):
        return self.tasks["cep"](self.config, r, train, cet, dense)

    def retrain(self, r, mask):
        return self.tasks["retrain"](self.config, r, mask)

    def ticket_from_next_round(self, r, next_train):
        return self.tasks["ticket"](self.config, r, next_train)

    def record(self, r, train, mask, previous_sparsity, prac_set, ticket, cumulative_before):
        return st.record_of_round(self.config, r, train, mask, previous_sparsity, prac_set, ticket, cumulative_before)


@flow(name="prac-lth", log_prints=True)
def prac_lth(preset: str = "digits", method: str = "prac", seed: int = 0,
             overrides: list[str] | None = None) -> list[dict[str, Any]]:
    """Find lottery tickets for one preset × method × seed; returns the per-round records."""
    config = experiment_config(preset, method, seed, overrides)
    check_deployment_dataset(config, deployment.name)
    logger = get_run_logger()
    tracking.check_tracking_reachable(tracking.tracking_uri())  # fail fast, before any training
    experiment_id = tracking.ensure_experiment(config.preset)
    fp = fingerprint(config)
    run_id = tracking.parent_run(experiment_id, fp, config.method, config.seed, flat_params(config),
                                 run_name=f"{config.method}-seed{config.seed}")
    logger.info(f"{config.preset} · {config.method} · seed {config.seed} · fingerprint {fp} · MLflow run {run_id}")
    if note := short_schedule_note(config):
        logger.warning(note)
    config_dict = config.model_dump(mode="json")
    try:
        st.prepare_run_task.with_options(cache_policy=stage_cache_policy(config.runtime.output_dir))(config_dict)

        def on_round(out: RoundOutputs) -> None:
            logger.info(round_line(out.record))
            log_round_task(config_dict, experiment_id, run_id, out.record.round, out.record.metrics(),
                           out.train, [out.mask, out.prac_set])
            log_ticket_model_task(config_dict, experiment_id, run_id, out.record.round)  # m ⊙ θ_rewind, every round

        def on_late_ticket(out: RoundOutputs) -> None:
            log_ticket_task(run_id, out.record.round, out.record.ticket_test_acc)

        outputs = run_rounds(config, TaskSteps(config), on_round, on_late_ticket)
    except BaseException:
        tracking.finish_run(run_id, "FAILED")
        raise
    records = [out.record for out in outputs]
    write_round_summaries(config, records)
    tracking.finish_run(run_id)
    return [vars(r) for r in records]
