"""One experiment (preset × method × seed) run in-process by the engine alone: the IMP loop with the
steps called directly. The Prefect flow (flows/) runs the same loop with the steps as tasks."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from prac.data.digest import loaded_data_digest
from prac.imp import imp_steps
from prac.imp.alongside import StageProcess, with_shared_cores
from prac.settings.config import ExperimentConfig
from prac.imp.context import ExperimentContext, build_context
from prac.training.early_stop import MaskDistanceEarlyStop
from prac.imp.concurrency import references_first, round0_first, sharing_cores
from prac.imp.imp_loop import Done, RoundOutputs, run_rounds
from prac.imp.retrain_queue import RetrainQueue, stacks_retrains
from prac.imp.stage_table import RETRAIN
from prac.strategies.methods import get_method
from prac.reporting.report import late_ticket_line, round_line
from prac.imp.round_record import RoundRecord, round_record
from prac.layout.run_paths import finished_rows, run_paths
from prac.imp.ticket import report_ticket

Log = Callable[[str], None]


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    fingerprint: str
    output_dir: Path
    rounds: list[RoundRecord]


def short_schedule_note(config: ExperimentConfig) -> str | None:
    """Early stop needs window + 1 + max(1, warmup) epochs to fire: say so rather than silently never stopping."""
    need = MaskDistanceEarlyStop.minimum_epochs(config.prac.early_stop_window, config.train.warmup_epochs)
    if get_method(config.method).early_stop and config.prac.early_stop and config.train.epochs < need:
        return f"note: early stop needs at least {need} epochs to fire; with {config.train.epochs} epochs it never will"
    return None


class EngineSteps:
    """The IMP steps as direct calls (no orchestration)."""

    def __init__(self, ctx: ExperimentContext, log: Log, beside: StageProcess | None = None):
        self.ctx, self.log, self.beside = ctx, log, beside
        self.queue = RetrainQueue(self._retrain_with) if stacks_retrains(ctx.config) else None

    def _epochs(self, label: str) -> Log | None:
        return (lambda line: self.log(f"{label}: {line}")) if self.ctx.config.runtime.verbose else None

    def run(self, stage, r, stack_with=None, **inputs):
        if stage.note and (note := stage.note(self.ctx, r)):
            self.log(note)
        progress = self._epochs(stage.progress.format(r=r)) if stage.progress else None
        return stage.call(self.ctx, r, inputs, progress=progress, warn=self.log, stack_with=stack_with)

    def start(self, stage, r, **inputs):
        if self.queue is not None and stage.stacks:
            return self.queue.add(r, inputs["mask"])
        if self.beside is None:
            return Done(self.run(stage, r, **inputs))
        return self.beside.start(stage.name, self.ctx.config, r, inputs)

    def _retrain_with(self, r, mask, others):
        return self.run(RETRAIN, r, stack_with=others, mask=mask)

    def record(self, r, train, mask, previous_sparsity, prac_set, ticket, cumulative_before):
        return round_record(self.ctx, r, train, mask, previous_sparsity, prac_set, ticket, cumulative_before)


def write_round_summaries(config: ExperimentConfig, records: list[RoundRecord]) -> None:
    paths = run_paths(config)
    for record in records:
        imp_steps.write_json(paths.round(record.round) / "round.json", asdict(record))
    imp_steps.write_json(paths.root / "rounds.json", [asdict(r) for r in records])


def finished_rounds(config: ExperimentConfig) -> list[RoundRecord] | None:
    """The records of an experiment that ran to its end before (its rounds.json, written last) by this code from
    this data (its content loaded once per process: prac.data.digest), else None."""
    rows = finished_rows(config, lambda: loaded_data_digest(config.data.dataset, config.runtime.data_dir))
    return None if rows is None else [RoundRecord(**row) for row in rows]


def compare_in_process(configs: list[ExperimentConfig], log: Log = print, parallel: int = 1) -> list[dict]:
    """The experiments, each read back if it finished before (one after another, or `parallel` at once as
    processes, in prac.imp.concurrency's order): per-round rows with `method` and `seed` (what prac.reporting.comparison
    summarises), in the order of `configs`."""
    records: dict[tuple[str, int], list[RoundRecord]] = {}
    if parallel <= 1:
        for config in references_first(configs):
            records[(config.method, config.seed)] = _records(config, log)
    else:
        with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
            for config, future in round0_first(sharing_cores(configs, parallel), lambda c: pool.submit(_records, c),
                                               lambda futures: next(as_completed(futures))):
                records[(config.method, config.seed)] = future.result()
                log(f"== {config.method} · seed {config.seed}: done")
    return [{"method": c.method, "seed": c.seed, **asdict(r)} for c in configs for r in records[(c.method, c.seed)]]


def _records(config: ExperimentConfig, log: Log = print) -> list[RoundRecord]:
    records = finished_rounds(config)
    if records is None:
        log(f"== {config.method} · seed {config.seed}")
        return run_experiment(config, log).rounds
    log(f"== {config.method} · seed {config.seed}: finished earlier, read from {run_paths(config).root}")
    return records


def run_experiment(config: ExperimentConfig, log: Log = print) -> ExperimentResult:
    config = with_shared_cores(config)
    ctx = build_context(config)
    imp_steps.prepare_run(ctx, log)
    if note := short_schedule_note(config):
        log(note)

    sparsities = ctx.round_sparsities()  # each round's mask sparsity: runtime.evaluate_tickets=at: picks by it

    def on_round(out: RoundOutputs) -> None:
        log(round_line(config, out.record, sparsities))
        report_ticket(ctx, out.record.round)  # round_NN/ticket_sparsity.json, as the flow writes it

    beside = StageProcess() if config.runtime.retrain_alongside else None
    try:
        outputs = run_rounds(config, EngineSteps(ctx, log, beside), on_round=on_round,
                             on_late_ticket=lambda out: log(late_ticket_line(config, out.record)),
                             sparsities=sparsities)
    except BaseException:
        if beside is not None:
            beside.close(failed=True)
        raise
    if beside is not None:
        beside.close()
    records = [out.record for out in outputs]
    write_round_summaries(config, records)
    return ExperimentResult(config, ctx.fingerprint, run_paths(config).root, records)
