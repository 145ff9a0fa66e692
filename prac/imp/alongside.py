"""A stage run beside the IMP loop, in a second process (runtime.retrain_alongside): the ticket retrain of round r
while round r+1 trains. A process, not a thread: its own torch threads and, on a GPU, no CUDA-graph capture of one
thread meeting the other's kernels. The two share the cores: `sharing_cores` gives each half of them."""
from __future__ import annotations

import multiprocessing
from multiprocessing.pool import AsyncResult, Pool

from prac.artifacts.refs import ArtifactRef
from prac.imp.concurrency import sharing_cores
from prac.imp.context import build_context
from prac.imp.stage_table import STAGES
from prac.settings.config import ExperimentConfig


def with_shared_cores(config: ExperimentConfig) -> ExperimentConfig:
    """The config a run with retrains alongside trains under: half the cores each for the loop and its retrains
    (unless runtime.threads or OMP_NUM_THREADS says otherwise)."""
    return sharing_cores([config], 2)[0] if config.runtime.retrain_alongside else config


def run_stage(stage: str, config: ExperimentConfig, round_index: int,
              inputs: dict[str, ArtifactRef | None]) -> ArtifactRef:
    """In the second process: the stage on its own context (its data loaded there, its threads set)."""
    return STAGES[stage].call(build_context(config), round_index, inputs)


class Running:
    """A stage running in the second process (prac.imp.imp_loop.Pending)."""

    def __init__(self, result: AsyncResult):
        self._result = result

    def done(self) -> bool:
        return self._result.ready()

    def result(self) -> ArtifactRef:
        return self._result.get()


class StageProcess:
    """One process that runs the stages it is given, one after another, in the order given."""

    def __init__(self) -> None:
        self._pool: Pool | None = None

    def start(self, stage: str, config: ExperimentConfig, round_index: int,
              inputs: dict[str, ArtifactRef | None]) -> Running:
        if self._pool is None:  # started on first use: a run without retrains starts no process
            self._pool = multiprocessing.get_context("spawn").Pool(1)
        return Running(self._pool.apply_async(run_stage, (stage, config, round_index, inputs)))

    def close(self, failed: bool = False) -> None:
        """Wait for what it runs; `failed` (the loop stopped): stop it now. What it finished is on disk, and a
        retrain stopped midway resumes from its epoch checkpoint."""
        if self._pool is not None:
            if failed:
                self._pool.terminate()
            else:
                self._pool.close()
            self._pool.join()
            self._pool = None
