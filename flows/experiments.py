"""A comparison's experiments (methods × seeds), one after another or several at once.

At once means separate processes (Prefect's process pool: each has its own torch threads and data, so
they share a GPU or a many-core CPU). The arms of one seed share round 0, so one arm per seed runs first
and trains it; the seed's other arms start when it is done and reuse it instead of training it again
side by side. Each experiment is the `prac-lth` flow, a subflow of the comparison either way."""
from __future__ import annotations

import os
from typing import Any, Callable

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner

from flows.prac_lth import prac_lth
from tasks import tracking

Records = list[dict[str, Any]]
Done = Callable[[str, int, Records], None]


@task(name="experiment", task_run_name="{method}-seed{seed}", cache_policy=NO_CACHE)
def experiment_task(preset: str, method: str, seed: int, overrides: list[str] | None) -> Records:
    return prac_lth(preset=preset, method=method, seed=seed, overrides=overrides)


def _share_local_server() -> None:
    """In Prefect's local mode the processes would each start a temporary server of their own: point them
    (through the environment they inherit) at this process's, so every run shows in one place."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        from prefect.server.api.server import SubprocessASGIServer

        os.environ["PREFECT_API_URL"] = SubprocessASGIServer().api_url


def run_experiments(preset: str, methods: list[str], seeds: list[int], overrides: list[str] | None,
                    parallel: int, on_done: Done = lambda method, seed, records: None) -> dict[tuple[str, int], Records]:
    """Every method × seed; `on_done` sees each as it finishes. Returns the records by (method, seed)."""
    results: dict[tuple[str, int], Records] = {}

    def finished(method: str, seed: int, records: Records) -> None:
        results[(method, seed)] = records
        on_done(method, seed, records)

    if parallel <= 1:
        for seed in seeds:
            for method in methods:
                finished(method, seed, prac_lth(preset=preset, method=method, seed=seed, overrides=overrides))
        return results
    _share_local_server()
    # The store and the experiment are created here, once: processes creating one store at the same
    # moment race on its schema.
    tracking.check_tracking_reachable(tracking.tracking_uri())
    tracking.ensure_experiment(preset)
    with ProcessPoolTaskRunner(max_workers=parallel) as runner:
        def submit(method: str, seed: int):
            future = runner.submit(experiment_task, {"preset": preset, "method": method, "seed": seed,
                                                     "overrides": overrides})
            pending[future] = (method, seed)
            return future

        pending: dict[Any, tuple[str, int]] = {}
        waiting = [submit(methods[0], seed) for seed in seeds]  # round 0 of each seed, trained once
        while waiting:
            future = next(iter(as_completed(waiting)))
            waiting.remove(future)
            method, seed = pending.pop(future)
            finished(method, seed, future.result())
            if method == methods[0]:
                waiting += [submit(other, seed) for other in methods[1:]]
    return results
