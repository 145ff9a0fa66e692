"""A comparison's experiments (methods × seeds), one after another, several at once, or over a work pool.

On a pool, each is a flow run of its deployment on whichever worker is free (prac_lth/flows/fleet.py). At once
means separate processes (Prefect's process pool: each has its own torch threads and data, so
they share a GPU or a many-core CPU), in prac.imp.concurrency's order (one arm per shared round 0 first). Each
experiment is the `prac-lth` flow, a subflow of the comparison either way."""
from __future__ import annotations

from typing import Any, Callable

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner

from prac_lth.flows import fleet
from prac_lth.flows.experiment_flow import prac_lth
from prac_lth.flows.local_server import share_local_server
from prac.imp.concurrency import references_first, round0_first, sharing_cores
from prac.settings.config import ExperimentConfig
from prac_lth.tasks import tracking

Records = list[dict[str, Any]]
Done = Callable[[str, int, Records], None]


@task(name="experiment", task_run_name="{method}-seed{seed}", cache_policy=NO_CACHE)
def experiment_task(preset: str, method: str, seed: int, config: dict[str, Any]) -> Records:
    return prac_lth(preset=preset, method=method, seed=seed, config=config)


def run_experiments(configs: list[ExperimentConfig], parallel: int,
                    on_done: Done = lambda method, seed, records: None,
                    on_pool: fleet.OnPool | None = None) -> dict[tuple[str, int], Records]:
    """Every experiment of `configs` (each subflow gets its config, serialised, and its names); `on_done`
    sees each as it finishes. `on_pool`: run each as a flow run of its deployment, on its work pool (`parallel`
    is then the pool's business). Returns the records by (method, seed)."""
    results: dict[tuple[str, int], Records] = {}

    def finished(config: ExperimentConfig, records: Records) -> None:
        results[(config.method, config.seed)] = records
        on_done(config.method, config.seed, records)

    def parameters(config: ExperimentConfig) -> dict[str, Any]:
        return {"preset": config.preset, "method": config.method, "seed": config.seed,
                "config": config.model_dump(mode="json")}

    if on_pool is not None:
        fleet.run_on_pool(configs, on_pool, finished)
        return results
    if parallel <= 1:
        for config in references_first(configs):
            finished(config, prac_lth(**parameters(config)))
        return results
    share_local_server()
    # The store and the experiment are created here, once: processes creating one store at the same
    # moment race on its schema.
    tracking.check_tracking_reachable(tracking.tracking_uri())
    tracking.ensure_experiment(configs[0].preset)
    with ProcessPoolTaskRunner(max_workers=parallel) as runner:
        for config, future in round0_first(sharing_cores(configs, parallel),
                                           lambda c: runner.submit(experiment_task, parameters(c)),
                                           lambda futures: next(iter(as_completed(futures)))):
            finished(config, future.result())
    return results
