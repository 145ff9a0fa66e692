"""The IMP steps (prac.imp.imp_loop.Steps) as Prefect tasks: what the flow `prac-lth` runs its rounds with."""
from __future__ import annotations

from typing import Callable

from prefect.task_runners import ProcessPoolTaskRunner

from prac.artifacts.refs import ArtifactRef
from prac.errors import ArtifactError
from prac.imp.imp_loop import Done
from prac.imp.recompute import Recompute, is_forced
from prac.imp.retrain_queue import Queued, RetrainQueue, stacks_retrains
from prac.imp.stage_table import RETRAIN, Stage
from prac.settings.config import ExperimentConfig
from prac_lth.flows.local_server import share_local_server
from prac_lth.flows.pool_retrains import PoolRetrain
from prac_lth.tasks import stage_tasks as st
from prac_lth.tasks.caching import stage_options


class TaskSteps:
    """The IMP steps as Prefect tasks, each cached by fingerprint + round + stage + code version + inputs
    (prac_lth.tasks.caching). A stage named in `recompute` runs again (its checkpoints set aside); a cached stage
    whose output file (for a ticket, its trained weights too: Stage.check) is missing or fails its checksum runs
    again too, with one line saying so. With runtime.retrain_alongside, `start` runs its task in a process of its
    own (Prefect's process pool, one process: the retrains one after another), beside the loop, or, given
    `retrain_deployment`, as flow runs of it on the pool (prac_lth/flows/pool_retrains.py); `close` ends that
    process."""

    def __init__(self, config: ExperimentConfig, recompute: list[Recompute], warn: Callable[[str], None],
                 retrain_deployment: str | None = None):
        self.config = config  # the object itself: the tasks and their cache keys do not validate it again
        self.recompute, self.warn = recompute, warn
        self.retrain_deployment = retrain_deployment  # retrains as its flow runs on the pool (pool_retrains.py)
        options = stage_options(config.runtime.output_dir)
        self.tasks = {name: t.with_options(**options) for name, t in st.STAGE_TASKS.items()}
        self._beside: ProcessPoolTaskRunner | None = None
        self.queue = RetrainQueue(self._retrain_with) if stacks_retrains(config) else None

    def run(self, stage: Stage, r: int | None, **inputs: ArtifactRef | None) -> ArtifactRef:
        if is_forced(self.recompute, stage.name, r):
            return self._run(stage, r, inputs, fresh=True)
        return self._checked(stage, r, inputs, self._run(stage, r, inputs, fresh=False))

    def start(self, stage: Stage, r: int, **inputs: ArtifactRef | None) -> "Done | Beside | PoolRetrain | Queued":
        if self.queue is not None and stage.stacks and not is_forced(self.recompute, stage.name, r):
            return self.queue.add(r, inputs["mask"])  # each round's own task later, the first training the stack
        if not self.config.runtime.retrain_alongside:
            return Done(self.run(stage, r, **inputs))
        if self.retrain_deployment and stage is RETRAIN and not is_forced(self.recompute, stage.name, r):
            return PoolRetrain(self.config, self.retrain_deployment, r, inputs["mask"],
                               lambda: self.run(stage, r, **inputs))
        if self._beside is None:
            share_local_server()  # the process reports its task run where this flow run is
            self._beside = ProcessPoolTaskRunner(max_workers=1).__enter__()
        fresh = is_forced(self.recompute, stage.name, r)
        task, kwargs = self._task(stage, fresh)
        future = self._beside.submit(task, {"config": self.config, "round_index": r, "inputs": inputs, **kwargs})
        return Beside(self, stage, r, inputs, future, fresh)

    def close(self, failed: bool = False) -> None:
        """End the process beside the loop. The loop waited for every retrain's result, unless it `failed`: then
        stop the retrain now rather than after its whole schedule (what it finished is on disk; it resumes from
        its epoch checkpoint). Prefect's runner cannot stop a running task: its processes are terminated."""
        if self._beside is None:
            return
        if failed:
            for process in list((getattr(self._beside._executor, "_processes", None) or {}).values()):
                process.terminate()
        self._beside.__exit__(None, None, None)
        self._beside = None

    def _task(self, stage: Stage, fresh: bool):
        task = self.tasks[stage.name].with_options(refresh_cache=True) if fresh else self.tasks[stage.name]
        return task, ({"fresh": True} if fresh and stage.fresh else {})

    def _run(self, stage: Stage, r: int | None, inputs: dict, fresh: bool,
             stack_with: dict[int, ArtifactRef] | None = None) -> ArtifactRef:
        task, kwargs = self._task(stage, fresh)
        return task(self.config, r, inputs, **kwargs, **({"stack_with": stack_with} if stack_with else {}))

    def _retrain_with(self, r: int, mask: ArtifactRef, others: dict[int, ArtifactRef]) -> ArtifactRef:
        """Round r's retrain task, given the rounds still queued (the cache key is round r's own)."""
        inputs = {"mask": mask}
        return self._checked(RETRAIN, r, inputs, self._run(RETRAIN, r, inputs, fresh=False, stack_with=others))

    def _checked(self, stage: Stage, r: int | None, inputs: dict, ref: ArtifactRef) -> ArtifactRef:
        try:
            stage.check(ref)  # its file (a ticket's with its trained weights)
        except ArtifactError as damage:
            where = stage.name if r is None else f"{stage.name} of round {r}"
            self.warn(f"{damage}: {where} is computed again")
            ref = self._run(stage, r, inputs, fresh=True)
        return ref

    def record(self, r, train, mask, previous_sparsity, prac_set, ticket, cumulative_before):
        return st.record_of_round(self.config, r, train, mask, previous_sparsity, prac_set, ticket, cumulative_before)


class Beside:
    """A stage's task running in the process beside the loop (prac.imp.imp_loop.Pending)."""

    def __init__(self, steps: TaskSteps, stage: Stage, r: int, inputs: dict, future, fresh: bool):
        self.steps, self.stage, self.r, self.inputs, self.future, self.fresh = steps, stage, r, inputs, future, fresh

    def done(self) -> bool:
        return self.future.wrapped_future.done()

    def result(self) -> ArtifactRef:
        ref = self.future.result()
        return ref if self.fresh else self.steps._checked(self.stage, self.r, self.inputs, ref)
